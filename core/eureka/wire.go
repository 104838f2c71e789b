package eureka

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/heraldhq/herald/core/eureka/codec"
)

const (
	contentJSON = "application/json"
	contentXML  = "application/xml"
	contentText = "text/plain; charset=utf-8"
)

// The exact parse-failure bodies of Eureka (reference 1.3); clients and tests compare them.
var (
	parseErrorJSON = []byte(`{"error": "cannot parse request body"}`)
	parseErrorXML  = []byte(`<error><message>cannot parse request body</message></error>`)
)

func contentType(f codec.Format) string {
	if f == codec.JSON {
		return contentJSON
	}
	return contentXML
}

// cachedFormat is Eureka's rule for the cached reads: JSON if and only if the raw Accept header
// contains "json", otherwise XML.
func cachedFormat(r *http.Request) codec.Format {
	if strings.Contains(r.Header.Get("Accept"), "json") {
		return codec.JSON
	}
	return codec.XML
}

// compactRequested reports X-Eureka-Accept: compact (case-insensitive; anything else means full).
func compactRequested(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("X-Eureka-Accept"), "compact")
}

// negotiate is the standard JAX-RS negotiation between application/xml and application/json that
// Eureka's single-instance endpoints get: each type takes the quality of the most specific range
// that matches it; the higher quality wins, then the more specific range, then XML (listed first).
// XML is also the answer when Accept is absent. ok is false when Accept admits neither (Jersey
// answers 406).
func negotiate(r *http.Request) (f codec.Format, ok bool) {
	if strings.TrimSpace(r.Header.Get("Accept")) == "" && len(r.Header.Values("Accept")) <= 1 {
		return codec.XML, true // no (or an empty) Accept header
	}
	accept := r.Header.Values("Accept")
	xmlQ, jsonQ := rank{q: -1, spec: -1}, rank{q: -1, spec: -1}
	for _, line := range accept {
		for _, part := range strings.Split(line, ",") {
			mt, q := parseAcceptPart(part)
			xmlQ = xmlQ.match(mt, "application/xml", q)
			jsonQ = jsonQ.match(mt, "application/json", q)
		}
	}
	switch {
	case xmlQ.q <= 0 && jsonQ.q <= 0:
		return codec.XML, false
	case jsonQ.q > xmlQ.q || (jsonQ.q == xmlQ.q && jsonQ.spec > xmlQ.spec):
		return codec.JSON, true
	default:
		return codec.XML, true
	}
}

// rank is the quality a media type gets from an Accept header and how specific the range that
// gave it was (2 exact, 1 type/*, 0 */*).
type rank struct {
	q    float64
	spec int
}

// match returns the rank of typ after seeing the range mt with quality q: a more specific matching
// range replaces a less specific one, whatever their qualities.
func (r rank) match(mt, typ string, q float64) rank {
	spec := -1
	switch {
	case mt == typ:
		spec = 2
	case mt == "application/*":
		spec = 1
	case mt == "*/*" || mt == "*":
		spec = 0
	}
	if spec < 0 || spec < r.spec || (spec == r.spec && q <= r.q) {
		return r
	}
	return rank{q: q, spec: spec}
}

func parseAcceptPart(part string) (string, float64) {
	mt, params, _ := strings.Cut(part, ";")
	q := 1.0
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				q = f
			}
		}
	}
	return strings.ToLower(strings.TrimSpace(mt)), q
}

// requestFormat maps a request Content-Type to a format. Like JAX-RS, only application/json and
// application/xml are consumed, with a charset that is absent, UTF-8 or ISO-8859-1; latin1 is
// reported so the body can be transcoded.
func requestFormat(ct string) (f codec.Format, latin1 bool, ok bool) {
	switch ct {
	case contentJSON:
		return codec.JSON, false, true
	case contentXML:
		return codec.XML, false, true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, false, false
	}
	switch mt {
	case contentJSON:
		f = codec.JSON
	case contentXML:
		f = codec.XML
	default:
		return 0, false, false
	}
	switch cs := strings.ToLower(params["charset"]); cs {
	case "", "utf-8", "utf8":
		return f, false, true
	case "iso-8859-1", "latin1":
		return f, true, true
	}
	return 0, false, false
}

// bodyError is a request body that cannot be read: its HTTP status and message.
type bodyError struct {
	code int
	msg  string
}

func (e *bodyError) Error() string { return e.msg }

// limitedReader reads at most n bytes and remembers whether the source had more.
type limitedReader struct {
	r        io.Reader
	n        int64
	exceeded bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// Probe one byte so that a body of exactly the limit is accepted.
		var b [1]byte
		n, err := l.r.Read(b[:])
		if n > 0 {
			l.exceeded = true
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

var errTooLarge = errors.New("request body too large")

var gzipReaders sync.Pool

func (h *Handler) tooLarge() error {
	return &bodyError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", h.maxBody)}
}

// bufferedBody is a request body already read whole, as peer authentication reads a signed one
// to check its digest (peerauth.BufferedBody): the handler uses those bytes rather than read and
// copy them again.
type bufferedBody interface {
	Bytes() []byte
}

// readBody reads the request body, inflating Content-Encoding: gzip, and returns it: in buf, or
// the bytes of a body already read whole. The limit applies to the bytes on the wire and to the
// inflated bytes, so a small gzip bomb is refused too. A Content-Length within the limit sizes
// buf up front; one beyond it is refused before anything is read.
// maxPresize bounds the buffer a request body gets before any of it is read: most bodies (a
// registration, a batch of a few dozen items) fit at once, larger ones grow as they arrive.
const maxPresize = 256 << 10

func (h *Handler) readBody(r *http.Request, buf *bytes.Buffer) ([]byte, error) {
	if r.ContentLength > h.maxBody {
		return nil, h.tooLarge()
	}
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	if bb, ok := r.Body.(bufferedBody); ok && (enc == "" || enc == "identity") {
		b := bb.Bytes()
		if int64(len(b)) > h.maxBody {
			return nil, h.tooLarge()
		}
		return b, nil
	}
	wire := &limitedReader{r: r.Body, n: h.maxBody}
	var src io.Reader = wire
	switch enc {
	case "", "identity":
		if r.ContentLength > 0 {
			// ReadFrom asks for MinRead bytes of room before the read that sees the end. The
			// room given up front is capped: a client that declares a large body and sends it
			// slowly holds only what it has sent beyond that.
			buf.Grow(int(min(r.ContentLength, maxPresize)) + bytes.MinRead)
		}
	case "gzip", "x-gzip":
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(wire)
		} else {
			err = zr.Reset(wire)
		}
		if err != nil {
			if wire.exceeded {
				return nil, h.tooLarge()
			}
			return nil, &bodyError{http.StatusBadRequest, "cannot inflate gzip request body"}
		}
		defer gzipReaders.Put(zr)
		src = &limitedReader{r: zr, n: h.maxBody}
	default:
		return nil, &bodyError{http.StatusUnsupportedMediaType, fmt.Sprintf("unsupported Content-Encoding %q", enc)}
	}
	_, err := buf.ReadFrom(src)
	if lr, ok := src.(*limitedReader); (ok && lr.exceeded) || wire.exceeded || errors.Is(err, errTooLarge) {
		return nil, h.tooLarge()
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, h.tooLarge()
		}
		if src != io.Reader(wire) {
			return nil, &bodyError{http.StatusBadRequest, "cannot inflate gzip request body"}
		}
		return nil, &bodyError{http.StatusBadRequest, "cannot read request body"}
	}
	return buf.Bytes(), nil
}

// latin1ToUTF8 transcodes an ISO-8859-1 body, which the codecs (UTF-8 only) would otherwise
// reject or garble.
func latin1ToUTF8(b []byte) []byte {
	ascii := true
	for _, c := range b {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/4)
	for _, c := range b {
		out = utf8.AppendRune(out, rune(c))
	}
	return out
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuf(b *bytes.Buffer) {
	// Do not keep the occasional huge body alive in the pool.
	if b.Cap() > 1<<20 {
		return
	}
	b.Reset()
	bufPool.Put(b)
}

func acceptsGzip(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept-Encoding"), "gzip")
}

// plainText writes a plain-text message (Eureka's validation answers are plain text).
func plainText(w http.ResponseWriter, code int, msg string) {
	hd := w.Header()
	hd.Set("Content-Type", contentText)
	hd.Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}

// parseError writes Eureka's "cannot parse request body" in the request's format.
func parseError(w http.ResponseWriter, f codec.Format) {
	body := parseErrorXML
	if f == codec.JSON {
		body = parseErrorJSON
	}
	writeBytes(w, http.StatusBadRequest, contentType(f), body)
}

func writeBytes(w http.ResponseWriter, code int, ctype string, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", ctype)
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// writeEncoded writes a freshly encoded body, gzipped when the client accepts it (Eureka's Jersey
// gzip filter does the same for every endpoint).
func writeEncoded(w http.ResponseWriter, r *http.Request, code int, ctype string, body []byte) {
	if len(body) == 0 || !acceptsGzip(r) {
		writeBytes(w, code, ctype, body)
		return
	}
	buf := getBuf()
	defer putBuf(buf)
	gzipTo(buf, body, gzip.BestSpeed)
	hd := w.Header()
	hd.Set("Content-Encoding", "gzip")
	hd.Add("Vary", "Accept-Encoding")
	writeBytes(w, code, ctype, buf.Bytes())
}

var gzipWriters [gzip.BestCompression + 1]sync.Pool

// gzipTo compresses b into buf with a pooled writer: a gzip.Writer costs hundreds of kilobytes
// to allocate, more than the documents it compresses.
func gzipTo(buf *bytes.Buffer, b []byte, level int) {
	if level < 0 || level > gzip.BestCompression {
		level = gzip.DefaultCompression
	}
	slot := level
	if level == gzip.DefaultCompression {
		slot = 0
	}
	zw, _ := gzipWriters[slot].Get().(*gzip.Writer)
	if zw == nil {
		zw, _ = gzip.NewWriterLevel(buf, level) // level is valid, no error
	} else {
		zw.Reset(buf)
	}
	_, _ = zw.Write(b) // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	gzipWriters[slot].Put(zw)
}
