package clone

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSchedule(t *testing.T) {
	s, err := ParseSchedule("mon-fri 08:00-18:00=50MiB/s; sat,sun=unlimited; 22:00-06:00=400MiB/s; *=100MiB/s; tz=UTC")
	require.NoError(t, err)
	require.NotNil(t, s.Default)
	assert.Equal(t, 100*MiB, *s.Default)
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
	require.NotNil(t, s.Default)
	assert.Equal(t, Paused, *s.Default)
	assert.Len(t, s.Windows, 1)

	s, err = ParseSchedule("mon-fri 08:00-18:00=50MiB/s\n*=unlimited")
	require.NoError(t, err)
	assert.Nil(t, s.Default, "an unlimited default is stored as none")

	s, err = ParseSchedule("fri-mon=1M; 00:00-24:00 = 2M")
	require.NoError(t, err)
	assert.Equal(t, []time.Weekday{0, 1, 5, 6}, s.Windows[0].Days)
	assert.Equal(t, 24*time.Hour, s.Windows[1].End)
}

func TestParseScheduleAdaptive(t *testing.T) {
	s, err := ParseSchedule("adaptive")
	require.NoError(t, err)
	assert.Equal(t, DefaultYieldFactor, s.Adaptive)
	assert.Equal(t, Unlimited, s.RateAt(monday0759), "adaptive alone: no ceiling")

	s, err = ParseSchedule("mon-fri 08:00-18:00=50MiB/s; Adaptive=3; tz=UTC")
	require.NoError(t, err)
	assert.Equal(t, 3.0, s.Adaptive)
	assert.Equal(t, 50*MiB, s.RateAt(monday0759.Add(2*time.Minute)), "the window's rate is the ceiling")
	assert.Zero(t, Fixed(5*MiB).Adaptive)
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
		"adaptive=1":                          "a latency factor above 1",
		"adaptive=lots; *=5M":                 `not "lots"`,
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
		"*=200MiB/s; adaptive=1.5",
		"mon-fri 08:00-18:00=50MiB/s; *=unlimited; adaptive=2.25",
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

func TestScheduleZeroIsPaused(t *testing.T) {
	// Office hours held, full speed otherwise.
	s, err := ParseSchedule("mon-fri 08:00-18:00=0; *=unlimited; tz=UTC")
	require.NoError(t, err)
	tue10 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	sun10 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	require.Equal(t, time.Tuesday, tue10.Weekday())
	require.Equal(t, time.Sunday, sun10.Weekday())
	assert.Equal(t, Paused, s.RateAt(tue10))
	assert.NotEqual(t, Unlimited, s.RateAt(tue10), "office hours are paused, not unlimited")
	assert.Equal(t, Unlimited, s.RateAt(sun10))
	assert.Equal(t, "mon-fri 08:00-18:00=0; *=unlimited; tz=UTC", s.String())

	s, err = ParseSchedule("0")
	require.NoError(t, err)
	assert.Equal(t, Fixed(Paused), s)
	assert.Equal(t, Paused, s.RateAt(sun10))
	assert.Equal(t, "0", s.String())
}

func TestScheduleWithoutThrottleIsUnlimited(t *testing.T) {
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	assert.Equal(t, Unlimited, Schedule{}.RateAt(at), "a spec without a throttle")
	assert.Equal(t, Schedule{}, Fixed(Unlimited))
	assert.Equal(t, "unlimited", Schedule{}.String())

	s, err := ParseSchedule("sat,sun=5MiB/s; tz=UTC")
	require.NoError(t, err)
	assert.Equal(t, Unlimited, s.RateAt(at), "no \"*=RATE\": unlimited outside the windows")

	// State files: no throttle field, and the old "unlimited".
	var v struct{ S Schedule }
	require.NoError(t, json.Unmarshal([]byte(`{}`), &v))
	assert.Equal(t, Unlimited, v.S.RateAt(at))
	require.NoError(t, json.Unmarshal([]byte(`{"S":"unlimited"}`), &v))
	assert.Equal(t, Schedule{}, v.S, "round-trips to the zero Schedule")
	require.NoError(t, json.Unmarshal([]byte(`{"S":"mon-fri 08:00-18:00=50MiB/s; *=unlimited"}`), &v))
	assert.Equal(t, Unlimited, v.S.RateAt(at.Add(10*time.Hour)))
}
