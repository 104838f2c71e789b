package eureka

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
)

// Input that Eureka would store but that would break reads for everybody (registry.ValidateInstance
// lists it) is refused with 400 and a message that names the field and key, before any admission
// handler or the registry sees it.

// checkUTF8 refuses a body that is not UTF-8. encoding/json would quietly turn the bad bytes into
// U+FFFD, where Jackson refuses the document.
func checkUTF8(body []byte) error {
	if utf8.Valid(body) {
		return nil
	}
	off := 0
	for off < len(body) {
		r, n := utf8.DecodeRune(body[off:])
		if r == utf8.RuneError && n == 1 {
			break
		}
		off += n
	}
	return fmt.Errorf("request body is not valid UTF-8 (byte 0x%02x at offset %d); send UTF-8, or declare charset=ISO-8859-1", body[off], off)
}

// checkMetadataUpdate checks the pairs of PUT .../metadata, then the instance they would make:
// PUT adds keys, so without a bound an instance could grow past what any node accepts as a
// registration body (MaxBodyBytes), and then never reach a peer. An instance that is not
// registered is left to the registry (404).
func (h *Handler) checkMetadataUpdate(app, id string, kv map[string]string) error {
	for k, v := range kv {
		if err := registry.ValidateMetadataEntry(k, v); err != nil {
			var ie *registry.InvalidError
			if errors.As(err, &ie) {
				ie.App, ie.ID = app, id
			}
			return err
		}
	}
	cur, ok := h.reg.Instance(app, id)
	if !ok {
		return nil
	}
	next := cur.Clone()
	if next.Metadata == nil {
		next.Metadata = make(map[string]string, len(kv))
	}
	for k, v := range kv {
		next.Metadata[k] = v
	}
	if err := registry.ValidateInstance(next); err != nil {
		return err
	}
	if n := int64(len(codec.AppendInstance(nil, codec.JSON, next, codec.Options{}))); n > h.maxBody {
		return fmt.Errorf("metadata update refused: instance %s/%s would be %d bytes as a registration, more than the %d a request body may have (http.max_body_bytes)",
			app, id, n, h.maxBody)
	}
	return nil
}
