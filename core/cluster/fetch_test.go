package cluster

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestGet(t *testing.T) {
	payload := bytes.Repeat([]byte(`{"k":"v"}`), 500)
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write(payload)
	_ = zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(zipped.Bytes())
		case "/plain":
			_, _ = w.Write(payload)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	// A client that does not decompress on its own, as a custom one might be.
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(raw.CloseIdleConnections)
	tests := []struct {
		name    string
		client  *http.Client
		path    string
		timeout time.Duration
		want    []byte
		wantErr error
	}{
		{name: "gzip decoded by get", client: raw, path: "/gzip", timeout: time.Second, want: payload},
		{name: "gzip decoded by the transport", client: defaultClient(), path: "/gzip", timeout: time.Second, want: payload},
		{name: "plain", client: raw, path: "/plain", timeout: time.Second, want: payload},
		{name: "404 is errNotFound", client: raw, path: "/missing", timeout: time.Second, wantErr: errNotFound},
		{name: "timeout", client: raw, path: "/slow", timeout: 20 * time.Millisecond, wantErr: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := get(context.Background(), tt.client, srv.URL+tt.path, tt.timeout)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("body = %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
}
