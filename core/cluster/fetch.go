package cluster

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// maxBody bounds what is read from a peer. A full registry of 100k instances is about 150 MB of
// JSON; anything larger is a broken or hostile peer.
const maxBody = 256 << 20

// errNotFound is a 404 from a peer: for the herald endpoints it means the peer is not a herald node
// (an Eureka server), or an older one.
var errNotFound = errors.New("not found")

// statusError is a non-200 answer.
type statusError struct {
	url  string
	code int
}

func (e *statusError) Error() string { return fmt.Sprintf("GET %s: HTTP %d", e.url, e.code) }

func (e *statusError) Is(target error) bool {
	return target == errNotFound && e.code == http.StatusNotFound
}

// get fetches url within timeout and returns the body, decompressed. The default transport asks for
// gzip and decompresses transparently; a body still marked gzip (a custom transport) is handled here.
func get(ctx context.Context, client *http.Client, url string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, &statusError{url: url, code: resp.StatusCode}
	}
	var r io.Reader = resp.Body
	if !resp.Uncompressed && resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("GET %s: gzip: %w", url, err)
		}
		defer zr.Close()
		r = zr
	}
	body, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading body: %w", url, err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("GET %s: body larger than %d bytes", url, maxBody)
	}
	return body, nil
}
