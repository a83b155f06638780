package clone

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{
		"50MiB/s":   50 * MiB,
		"50mib/s":   50 * MiB,
		"1G":        GiB,
		"1g":        GiB,
		"1GB":       GB,
		"1GiB":      GiB,
		"200MB/s":   200 * MB,
		"750K":      750 * KiB,
		"750kB":     750 * KB,
		"4096":      4096,
		"4096B/s":   4096,
		"1.5G":      GiB + GiB/2,
		" 2 MiB/s ": 2 * MiB,
		"1T":        TiB,
		"0":         Paused,
		"0MiB/s":    Paused,
		"paused":    Paused,
		"unlimited": Unlimited,
		"Unlimited": Unlimited,
		"max":       Unlimited,
	} {
		got, err := ParseRate(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}

func TestParseRateErrors(t *testing.T) {
	for in, msg := range map[string]string{
		"":          "rate is empty",
		"fast":      "has no number",
		"50 Mbit/s": "unknown unit \"mbit\"",
		"50XB":      "unknown unit",
		"-5M":       "has no number",
		"1.2.3M":    "bad number",
		"0.1B":      "rounds to zero",
		"1e30G":     "unknown unit",
		"99999999T": "too large",
	} {
		_, err := ParseRate(in)
		require.Error(t, err, in)
		assert.ErrorIs(t, err, ErrBadRate, in)
		assert.Contains(t, err.Error(), msg, in)
		assert.Contains(t, err.Error(), "50MiB/s", "the error shows an example: %s", in)
	}
}

func TestRateStringRoundTrips(t *testing.T) {
	for _, r := range []Rate{Paused, Unlimited, 1, 1023, KiB, 50 * MiB, GiB + GiB/2, 3 * TiB, 200 * MB, 123456789} {
		s := r.String()
		back, err := ParseRate(s)
		require.NoError(t, err, s)
		assert.InEpsilon(t, float64(r)+1, float64(back)+1, 0.001, "%d -> %s -> %d", r, s, back)
	}
	assert.Equal(t, "50MiB/s", (50 * MiB).String())
	assert.Equal(t, "unlimited", Unlimited.String())
	assert.Equal(t, "1.500GiB/s", (GiB + GiB/2).String())

	var v struct{ R Rate }
	require.NoError(t, json.Unmarshal([]byte(`{"R":"20MiB/s"}`), &v))
	assert.Equal(t, 20*MiB, v.R)
	b, err := json.Marshal(v)
	require.NoError(t, err)
	assert.JSONEq(t, `{"R":"20MiB/s"}`, string(b))
	assert.Error(t, json.Unmarshal([]byte(`{"R":"fast"}`), &v))
}

func TestParseRateZeroIsPaused(t *testing.T) {
	// A throttle of 0 holds hydration; it does not lift the throttle.
	for _, in := range []string{"0", "0MiB/s", "0.0", "paused"} {
		got, err := ParseRate(in)
		require.NoError(t, err, in)
		assert.Equal(t, Paused, got, in)
		assert.NotEqual(t, Unlimited, got, "%s is paused, not unlimited", in)
	}
}

func TestParseRateRefusesOffAndNone(t *testing.T) {
	// "off" and "none" read as "no hydration" and as "no throttle" alike.
	for _, in := range []string{"off", "none", "Off", "none/s"} {
		_, err := ParseRate(in)
		require.Error(t, err, in)
		assert.ErrorIs(t, err, ErrBadRate, in)
		assert.Contains(t, err.Error(), "write 0 for paused or unlimited for no throttle", in)
	}
}

func TestRateTextOfPausedAndUnlimited(t *testing.T) {
	for _, tc := range []struct {
		r    Rate
		text string
	}{{Paused, "0"}, {Unlimited, "unlimited"}} {
		b, err := tc.r.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, tc.text, string(b))
		var back Rate
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, tc.r, back, tc.text)
	}

	// State files written when the zero Rate meant no throttle hold
	// "unlimited" for it: they keep meaning no throttle.
	var v struct{ R Rate }
	require.NoError(t, json.Unmarshal([]byte(`{"R":"unlimited"}`), &v))
	assert.Equal(t, Unlimited, v.R)
	require.NoError(t, json.Unmarshal([]byte(`{"R":"0"}`), &v))
	assert.Equal(t, Paused, v.R)
	b, err := json.Marshal(v)
	require.NoError(t, err)
	assert.JSONEq(t, `{"R":"0"}`, string(b))
}
