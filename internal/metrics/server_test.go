package metrics_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/internal/metrics"
)

// TestServerServesCollector: /metrics carries lunferry's metrics and the
// process's; Close stops serving.
func TestServerServesCollector(t *testing.T) {
	s, err := metrics.Listen("127.0.0.1:0", metrics.New(metrics.Options{Source: source(report(), nil)}))
	require.NoError(t, err)
	url := "http://" + s.Addr().String() + "/metrics"
	resp, err := http.Get(url)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), `lunferry_volume_step{step="hydrating",volume="db1"} 1`)
	require.Contains(t, string(body), "process_start_time_seconds")
	require.NoError(t, s.Close())
	_, err = http.Get(url)
	require.Error(t, err, "closed")
}

// TestListenRefusesBusyAddress: an address in use is an error that names
// the flag to change.
func TestListenRefusesBusyAddress(t *testing.T) {
	s, err := metrics.Listen("127.0.0.1:0", metrics.New(metrics.Options{Source: source(report(), nil)}))
	require.NoError(t, err)
	defer s.Close()
	_, err = metrics.Listen(s.Addr().String(), metrics.New(metrics.Options{Source: source(report(), nil)}))
	require.ErrorContains(t, err, "--metrics-listen")
}
