package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// client sends Eureka API calls over one keep-alive transport shared by all connections.
type client struct {
	http   *http.Client
	format string // "json" or "xml"
}

func newClient(connections int, timeout time.Duration, format string) *client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no global cap: MaxIdleConnsPerHost is the bound
		MaxIdleConnsPerHost: connections,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	return &client{http: &http.Client{Transport: tr, Timeout: timeout}, format: format}
}

func (c *client) close() { c.http.CloseIdleConnections() }

// trust makes the client verify https targets against the CA certificates in file.
func (c *client) trust(file string) error {
	pem, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no PEM certificate", file)
	}
	c.http.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool}
	return nil
}

func (c *client) accept() string {
	if c.format == "xml" {
		return "application/xml"
	}
	return "application/json"
}

// do sends one request, reads and discards the body, and returns the status and body size.
func (c *client) do(ctx context.Context, method, url string, body []byte) (int, int64, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Accept", c.accept())
	if body != nil {
		req.Header.Set("Content-Type", c.accept())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, n, err
}

// get fetches a URL and returns the status and body (for /metrics).
func (c *client) get(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// errorKind names a failed request for the error table: "http 503", "timeout", "connection" or
// "other". Successful requests (2xx) return "".
func errorKind(status int, err error) string {
	if err == nil {
		if status >= 200 && status < 300 {
			return ""
		}
		return "http " + strconv.Itoa(status)
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return "connection"
	}
	return "other"
}

// instances describes the synthetic instances: their apps, ids and registration bodies.
type instances struct {
	prefix  string // id prefix, unique per run
	apps    int
	ts      int64 // lastDirtyTimestamp of every registration
	format  string
	padding int // bytes of metadata padding
}

// AppPrefix starts the name of every application herald bench registers, so that its instances
// are easy to tell from real ones (and to remove by hand after a run with -keep).
const AppPrefix = "HERALD-BENCH-"

func (s *instances) app(i int64) string { return AppPrefix + strconv.FormatInt(i%int64(s.apps), 10) }
func (s *instances) id(i int64) string  { return s.prefix + "-" + strconv.FormatInt(i, 10) }

func ipOf(i int64) string {
	return fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255)
}

// body returns the registration body of instance i, in the client's format.
func (s *instances) body(i int64) []byte {
	app, id := s.app(i), s.id(i)
	if s.format == "xml" {
		return s.xmlBody(app, id, ipOf(i))
	}
	return s.jsonBody(app, id, ipOf(i))
}

func (s *instances) jsonBody(app, id, ip string) []byte {
	vip := strings.ToLower(app)
	b := make([]byte, 0, 900+s.padding)
	b = fmt.Appendf(b, `{"instance":{"instanceId":%q,"hostName":"host-%s","app":%q,"ipAddr":%q,"status":"UP",`+
		`"overriddenStatus":"UNKNOWN","port":{"$":8080,"@enabled":"true"},"securePort":{"$":8443,"@enabled":"false"},"countryId":1,`+
		`"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},`+
		`"leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90},`+
		`"metadata":{"zone":"zone-1","management.port":"8080","version":"1.0.0"`, id, id, app, ip)
	if s.padding > 0 {
		b = append(b, `,"pad":"`...)
		b = append(b, strings.Repeat("x", s.padding)...)
		b = append(b, '"')
	}
	b = fmt.Appendf(b, `},"homePageUrl":"http://%[1]s:8080/","statusPageUrl":"http://%[1]s:8080/actuator/info",`+
		`"healthCheckUrl":"http://%[1]s:8080/actuator/health","vipAddress":%[2]q,"secureVipAddress":%[2]q,`+
		`"isCoordinatingDiscoveryServer":"false","lastUpdatedTimestamp":"%[3]d","lastDirtyTimestamp":"%[3]d"}}`, ip, vip, s.ts)
	return b
}

func (s *instances) xmlBody(app, id, ip string) []byte {
	vip := strings.ToLower(app)
	b := make([]byte, 0, 1100+s.padding)
	b = fmt.Appendf(b, `<instance><instanceId>%s</instanceId><hostName>host-%s</hostName><app>%s</app><ipAddr>%s</ipAddr>`+
		`<status>UP</status><overriddenstatus>UNKNOWN</overriddenstatus><port enabled="true">8080</port>`+
		`<securePort enabled="false">8443</securePort><countryId>1</countryId>`+
		`<dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"><name>MyOwn</name></dataCenterInfo>`+
		`<leaseInfo><renewalIntervalInSecs>30</renewalIntervalInSecs><durationInSecs>90</durationInSecs></leaseInfo>`+
		`<metadata><zone>zone-1</zone><management.port>8080</management.port><version>1.0.0</version>`, id, id, app, ip)
	if s.padding > 0 {
		b = append(b, "<pad>"...)
		b = append(b, strings.Repeat("x", s.padding)...)
		b = append(b, "</pad>"...)
	}
	b = fmt.Appendf(b, `</metadata><homePageUrl>http://%[1]s:8080/</homePageUrl><statusPageUrl>http://%[1]s:8080/actuator/info</statusPageUrl>`+
		`<healthCheckUrl>http://%[1]s:8080/actuator/health</healthCheckUrl><vipAddress>%[2]s</vipAddress>`+
		`<secureVipAddress>%[2]s</secureVipAddress><isCoordinatingDiscoveryServer>false</isCoordinatingDiscoveryServer>`+
		`<lastUpdatedTimestamp>%[3]d</lastUpdatedTimestamp><lastDirtyTimestamp>%[3]d</lastDirtyTimestamp></instance>`, ip, vip, s.ts)
	return b
}

// paddingFor returns the metadata padding that brings a body to about payload bytes (0 when the
// unpadded body is already that large).
func paddingFor(s instances, payload int) int {
	if payload <= 0 {
		return 0
	}
	s.padding = 0
	base := len(s.body(1 << 20)) // a typical id length
	const overhead = len(`,"pad":""`)
	return max(0, payload-base-overhead)
}
