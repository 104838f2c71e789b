package codec

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// maxDepth is encoding/json's nesting limit (maxNestingDepth): deeper documents are refused.
const maxDepth = 10000

// scanner reads a JSON document in one pass, strictly as encoding/json validates it (RFC 8259:
// no trailing commas, no leading zeros, no control characters in strings, nesting bounded). The
// first syntax error is kept in err and every method does nothing after it.
type scanner struct {
	data  []byte
	i     int
	depth int
	err   error
	// stack holds the open containers of skip ('{' or '['), reused between values.
	stack []byte
}

func (s *scanner) fail(what string) {
	if s.err == nil {
		s.err = parseErr("invalid JSON at offset %d: %s", s.i, what)
	}
}

func (s *scanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// peek returns the first byte of the next value (0 at the end of the input or after an error).
func (s *scanner) peek() byte {
	if s.err != nil {
		return 0
	}
	s.ws()
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

func (s *scanner) push() {
	s.depth++
	if s.depth > maxDepth {
		s.fail("exceeded max depth")
	}
}

// open consumes the '{' or '[' at s.i.
func (s *scanner) open() {
	s.i++
	s.push()
}

// next reads what starts the next element of the open container (closing is '}' or ']'): false
// when the container ends (its closing byte consumed) or on error. For an object it reads the
// member's name too, returned as its string token, and the colon.
func (s *scanner) next(first bool, closing byte) (name []byte, more bool) {
	if s.err != nil {
		return nil, false
	}
	s.ws()
	if s.i >= len(s.data) {
		s.fail("unexpected end of input")
		return nil, false
	}
	switch c := s.data[s.i]; {
	case c == closing:
		s.i++
		s.depth--
		return nil, false
	case !first && c != ',':
		s.fail("want a comma")
		return nil, false
	case !first:
		s.i++
		s.ws()
	}
	if closing == ']' {
		return nil, true
	}
	if s.i >= len(s.data) || s.data[s.i] != '"' {
		s.fail("want a member name")
		return nil, false
	}
	name, _ = s.str()
	s.ws()
	if s.err != nil || s.i >= len(s.data) || s.data[s.i] != ':' {
		s.fail("want a colon")
		return nil, false
	}
	s.i++
	return name, true
}

// str reads the string token at s.i (a '"'). plain is true when its contents are ASCII without
// escapes: then they are its value as they stand.
func (s *scanner) str() (tok []byte, plain bool) {
	start := s.i
	plain = true
	d := s.data
	for j := s.i + 1; j < len(d); j++ {
		switch c := d[j]; {
		case c == '"':
			s.i = j + 1
			return d[start:s.i], plain
		case c == '\\':
			plain = false
			j++
			if j >= len(d) {
				s.i = j
				s.fail("unterminated string")
				return nil, false
			}
			switch d[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(d) || !isHex(d[j+1]) || !isHex(d[j+2]) || !isHex(d[j+3]) || !isHex(d[j+4]) {
					s.i = j
					s.fail("invalid \\u escape")
					return nil, false
				}
				j += 4
			default:
				s.i = j
				s.fail("invalid escape")
				return nil, false
			}
		case c < 0x20:
			s.i = j
			s.fail("control character in string")
			return nil, false
		case c >= utf8.RuneSelf:
			plain = false
		}
	}
	s.i = len(d)
	s.fail("unterminated string")
	return nil, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// text returns the value of a string token as encoding/json decodes it (invalid UTF-8 and lone
// surrogates become U+FFFD).
func text(tok []byte, plain bool) string {
	body := tok[1 : len(tok)-1]
	if plain || (bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body)) {
		return string(body)
	}
	var v string
	_ = json.Unmarshal(tok, &v) // a token str accepted always decodes
	return v
}

// name returns a member name token's value, without allocating for plain names.
func name(tok []byte) []byte {
	body := tok[1 : len(tok)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return body // a name that is not valid UTF-8 matches no field either way
	}
	return []byte(text(tok, false))
}

// number reads the number token at s.i.
func (s *scanner) number() []byte {
	d, start, i := s.data, s.i, s.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
		return i > j
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case !digits():
		s.i = i
		s.fail("invalid number")
		return nil
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			s.i = i
			s.fail("invalid number")
			return nil
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			s.i = i
			s.fail("invalid number")
			return nil
		}
	}
	s.i = i
	return d[start:i]
}

// literal reads true, false or null at s.i.
func (s *scanner) literal() []byte {
	for _, lit := range [...]string{"true", "false", "null"} {
		if bytes.HasPrefix(s.data[s.i:], []byte(lit)) {
			s.i += len(lit)
			return s.data[s.i-len(lit) : s.i]
		}
	}
	s.fail("invalid literal")
	return nil
}

// scalar reads a string, number or literal at s.i; false when the value is a container (not
// consumed) or on error.
func (s *scanner) scalar() ([]byte, bool) {
	switch c := s.peek(); {
	case c == '"':
		tok, _ := s.str()
		return tok, s.err == nil
	case c == 't' || c == 'f' || c == 'n':
		lit := s.literal()
		return lit, s.err == nil
	case c == '-' || '0' <= c && c <= '9':
		n := s.number()
		return n, s.err == nil
	case c == '{' || c == '[':
		return nil, false
	case c == 0 && s.err == nil && s.i >= len(s.data):
		s.fail("unexpected end of input")
	default:
		s.fail("invalid character")
	}
	return nil, false
}

// skip reads one value of any kind, validating it, without recursion, and returns its bytes.
func (s *scanner) skip() []byte {
	s.ws()
	start := s.i
	if tok, ok := s.scalar(); ok || s.err != nil {
		return tok
	}
	s.stack = s.stack[:0]
	for {
		// At the start of a value.
		if c := s.peek(); c == '{' || c == '[' {
			s.open()
			closing := byte('}')
			if c == '[' {
				closing = ']'
			}
			s.stack = append(s.stack, closing)
			if _, more := s.next(true, closing); more {
				continue
			}
			if s.err != nil {
				return nil
			}
			s.stack = s.stack[:len(s.stack)-1]
		} else if _, ok := s.scalar(); !ok {
			return nil
		}
		// After a whole value: close the containers that end here.
		for {
			if len(s.stack) == 0 {
				return s.data[start:s.i]
			}
			if _, more := s.next(false, s.stack[len(s.stack)-1]); more {
				break
			}
			if s.err != nil {
				return nil
			}
			s.stack = s.stack[:len(s.stack)-1]
		}
	}
}
