package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestProgressLine(t *testing.T) {
	var b bytes.Buffer
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	p := newProgressLine(&b, "vol1 verify", func() time.Time { return now })
	now = now.Add(2 * time.Second)
	p.update(100<<20, 400<<20)
	assert.Equal(t, "\rvol1 verify [#####...............]  25.0% 100MiB of 400MiB, 50.0MiB/s, ETA 6s\x1b[K", b.String())
	b.Reset()
	now = now.Add(100 * time.Millisecond)
	p.update(110<<20, 400<<20)
	assert.Empty(t, b.String(), "at most twice a second")
	now = now.Add(100 * time.Millisecond)
	p.update(400<<20, 400<<20)
	assert.Contains(t, b.String(), "100.0% 400MiB of 400MiB", "always when done")
	assert.True(t, strings.HasSuffix(b.String(), "ETA -\x1b[K"))
	b.Reset()
	p.end()
	assert.Equal(t, "\n", b.String())

	b.Reset()
	newProgressLine(&b, "x", time.Now).end()
	assert.Empty(t, b.String(), "nothing shown, nothing ended")
}

func TestIsTerminal(t *testing.T) {
	assert.False(t, isTerminal(&bytes.Buffer{}))
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	assert.False(t, isTerminal(f), "a file")
}
