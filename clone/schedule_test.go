package clone

import (
	"encoding/json"
	"testing"
	"time"

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
		"0":         Unlimited,
		"0MiB/s":    Unlimited,
		"unlimited": Unlimited,
		"Unlimited": Unlimited,
		"none":      Unlimited,
		"off":       Unlimited,
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
	for _, r := range []Rate{Unlimited, 1, 1023, KiB, 50 * MiB, GiB + GiB/2, 3 * TiB, 200 * MB, 123456789} {
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

func TestParseSchedule(t *testing.T) {
	s, err := ParseSchedule("mon-fri 08:00-18:00=50MiB/s; sat,sun=unlimited; 22:00-06:00=400MiB/s; *=100MiB/s; tz=UTC")
	require.NoError(t, err)
	assert.Equal(t, 100*MiB, s.Default)
	require.Len(t, s.Windows, 3)
	assert.Equal(t, []time.Weekday{1, 2, 3, 4, 5}, s.Windows[0].Days)
	assert.Equal(t, 8*time.Hour, s.Windows[0].Start)
	assert.Equal(t, 18*time.Hour, s.Windows[0].End)
	assert.Equal(t, []time.Weekday{0, 6}, s.Windows[1].Days)
	assert.Nil(t, s.Windows[2].Days)
	assert.Equal(t, "UTC", s.Location.String())

	at := func(day, hh, mm int) time.Time { return time.Date(2026, 11, 22+day, hh, mm, 0, 0, time.UTC) } // day 0 = Sunday
	for _, tc := range []struct {
		t    time.Time
		want Rate
	}{
		{at(1, 7, 59), 100 * MiB}, // Monday before office hours
		{at(1, 8, 0), 50 * MiB},   // start is inclusive
		{at(1, 17, 59), 50 * MiB},
		{at(1, 18, 0), 100 * MiB}, // end is exclusive
		{at(1, 23, 0), 400 * MiB}, // night window, evening part
		{at(2, 5, 59), 400 * MiB}, // night window, morning part on the next day
		{at(2, 6, 0), 100 * MiB},
		{at(6, 12, 0), Unlimited}, // Saturday
		{at(0, 3, 0), Unlimited},  // Sunday: the weekend window comes first
		{at(5, 10, 0), 50 * MiB},  // Friday
	} {
		assert.Equal(t, tc.want, s.RateAt(tc.t), "%s", tc.t.Format("Mon 15:04"))
	}
}

func TestScheduleCrossingMidnightBelongsToItsStartDay(t *testing.T) {
	s, err := ParseSchedule("fri 22:00-02:00=1MiB/s; *=9MiB/s; tz=UTC")
	require.NoError(t, err)
	fri := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, time.Friday, fri.Weekday())
	assert.Equal(t, 9*MiB, s.RateAt(fri.Add(1*time.Hour)), "Friday 01:00 belongs to Thursday night, not listed")
	assert.Equal(t, 1*MiB, s.RateAt(fri.Add(23*time.Hour)))
	assert.Equal(t, 1*MiB, s.RateAt(fri.Add(25*time.Hour)), "Saturday 01:00 is still Friday's window")
	assert.Equal(t, 9*MiB, s.RateAt(fri.Add(26*time.Hour)))
}

func TestScheduleTimeZone(t *testing.T) {
	s, err := ParseSchedule("09:00-17:00=1MiB/s; *=unlimited; tz=Asia/Tokyo")
	if err != nil {
		t.Skipf("no tzdata here: %v", err)
	}
	// 01:00 UTC is 10:00 in Tokyo.
	assert.Equal(t, 1*MiB, s.RateAt(time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)))
	assert.Equal(t, Unlimited, s.RateAt(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)))
}

func TestParseScheduleShorthands(t *testing.T) {
	s, err := ParseSchedule("50MiB/s")
	require.NoError(t, err)
	assert.Equal(t, Fixed(50*MiB), s)

	s, err = ParseSchedule("")
	require.NoError(t, err)
	assert.Equal(t, Fixed(Unlimited), s)

	s, err = ParseSchedule("mon-fri 08:00-18:00=50MiB/s\n*=0")
	require.NoError(t, err)
	assert.Equal(t, Unlimited, s.Default)
	assert.Len(t, s.Windows, 1)

	s, err = ParseSchedule("fri-mon=1M; 00:00-24:00 = 2M")
	require.NoError(t, err)
	assert.Equal(t, []time.Weekday{0, 1, 5, 6}, s.Windows[0].Days)
	assert.Equal(t, 24*time.Hour, s.Windows[1].End)
}

func TestParseScheduleErrors(t *testing.T) {
	for in, msg := range map[string]string{
		"mon-fry 08:00-18:00=50MiB/s":         `unknown day "fry"`,
		"mon-fri 8-18:00=50MiB/s":             "", // accepted: "8" is 08:00
		"mon-fri 08:00-25:00=50MiB/s":         `bad time of day "25:00"`,
		"mon-fri 08:00-08:00=5M":              "is empty",
		"mon-fri 08:00=5M":                    "needs a start and an end",
		"mon-fri 08:00-18:00":                 `missing "=RATE"`,
		"mon-fri 08:00-18:00=fast":            `bad rate "fast"`,
		"*=1M; *=2M":                          "default rate is given twice",
		"1M; *=2M":                            "default rate is given twice",
		"=5M":                                 `nothing before "="`,
		"tz=Mars/Olympus":                     "unknown time zone",
		"mon 01:00-02:00 03:00-04:00=1M":      "more than one time range",
		"mon tue=1M":                          "more than one day list",
		"24:00-02:00=1M":                      `bad time of day "24:00"`,
		"mon-fri 08:00-18:00=50MiB/s; *=fast": `clause 2 "*=fast"`,
	} {
		_, err := ParseSchedule(in)
		if msg == "" {
			assert.NoError(t, err, in)
			continue
		}
		require.Error(t, err, in)
		assert.ErrorIs(t, err, ErrBadSchedule, in)
		assert.Contains(t, err.Error(), msg, in)
		assert.Contains(t, err.Error(), "mon-fri 08:00-18:00=50MiB/s", "the error shows the syntax: %s", in)
	}
}

func TestScheduleStringRoundTrips(t *testing.T) {
	for _, in := range []string{
		"mon-fri 08:00-18:00=50MiB/s; *=unlimited",
		"sat,sun=unlimited; 22:00-06:00=400MiB/s; *=100MiB/s; tz=UTC",
		"mon,wed,fri-sun 01:30-02:45=1.500MiB/s; *=2MiB/s",
		"20MiB/s",
		"mon-sun=1MiB/s; *=unlimited",
	} {
		s, err := ParseSchedule(in)
		require.NoError(t, err, in)
		assert.Equal(t, in, s.String())
		back, err := ParseSchedule(s.String())
		require.NoError(t, err)
		assert.Equal(t, s, back)
	}

	var v struct{ S Schedule }
	require.NoError(t, json.Unmarshal([]byte(`{"S":"mon-fri 08:00-18:00=50MiB/s; *=unlimited"}`), &v))
	b, err := json.Marshal(v)
	require.NoError(t, err)
	assert.JSONEq(t, `{"S":"mon-fri 08:00-18:00=50MiB/s; *=unlimited"}`, string(b))
}
