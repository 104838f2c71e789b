// Package clientauth authenticates and authorises Eureka clients: HTTP Basic credentials (as
// Spring Cloud sends them for http://user:pass@host/eureka/ and eureka-js-client for its auth
// option) and bearer tokens, each with a role. It is off unless credentials are configured, since
// Eureka itself serves its API to anyone.
//
// Roles, each including the one before:
//
//	read      GET and HEAD: the registry, the dashboard, metrics
//	register  writes (register, heartbeat, cancel, metadata, status) for the apps its patterns name
//	admin     everything, for any app
//
// Authenticated peers (see package peerauth) are not clients and are never asked for credentials.
package clientauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/heraldhq/herald/sdk/peerauth"
)

// Role is what a caller may do.
type Role int

// The roles, from least to most.
const (
	None Role = iota
	Read
	Register
	Admin
)

// ParseRole reads "none", "read", "register" or "admin".
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(s) {
	case "none":
		return None, nil
	case "read":
		return Read, nil
	case "register":
		return Register, nil
	case "admin":
		return Admin, nil
	}
	return None, fmt.Errorf("unknown role %q (want read, register or admin)", s)
}

func (r Role) String() string {
	return [...]string{"none", "read", "register", "admin"}[r]
}

// Credential is one client identity.
type Credential struct {
	// Name is the Basic user name, and the identity in logs.
	Name string
	// Password is checked for HTTP Basic; Token for bearer. Set one or both.
	Password, Token string
	Role            Role
	// Apps are the application-name patterns (path.Match syntax, compared upper-case) a register
	// role may write. Empty: every app.
	Apps []string
}

// Authorizer checks every request a client makes.
type Authorizer struct {
	anonymous Role
	basic     map[string]*entry // by user name
	bearer    []*entry
}

type entry struct {
	c    Credential
	pass [32]byte
	tok  [32]byte
}

// New returns an Authorizer. anonymous is the role of callers without credentials.
func New(creds []Credential, anonymous Role) (*Authorizer, error) {
	a := &Authorizer{anonymous: anonymous, basic: map[string]*entry{}}
	for _, c := range creds {
		if c.Password == "" && c.Token == "" {
			return nil, fmt.Errorf("credential %q has neither a password nor a token", c.Name)
		}
		for _, p := range c.Apps {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("credential %q: bad app pattern %q: %w", c.Name, p, err)
			}
		}
		e := &entry{c: c}
		for i, p := range e.c.Apps {
			e.c.Apps[i] = strings.ToUpper(p)
		}
		if c.Password != "" {
			if _, dup := a.basic[c.Name]; dup {
				return nil, fmt.Errorf("credential %q is defined twice", c.Name)
			}
			e.pass = sha256.Sum256([]byte(c.Password))
			a.basic[c.Name] = e
		}
		if c.Token != "" {
			e.tok = sha256.Sum256([]byte(c.Token))
			a.bearer = append(a.bearer, e)
		}
	}
	return a, nil
}

var (
	errBadCredentials = errors.New("bad credentials")
	errNoCredentials  = errors.New("credentials required")
)

// identify returns the caller's credential, nil for an anonymous caller.
func (a *Authorizer) identify(r *http.Request) (*entry, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, nil
	}
	if user, pass, ok := r.BasicAuth(); ok {
		e := a.basic[user]
		sum := sha256.Sum256([]byte(pass))
		if e == nil {
			// Compare anyway, so a wrong user name costs what a wrong password does.
			subtle.ConstantTimeCompare(sum[:], sum[:])
			return nil, errBadCredentials
		}
		if subtle.ConstantTimeCompare(sum[:], e.pass[:]) != 1 {
			return nil, errBadCredentials
		}
		return e, nil
	}
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		var found *entry
		for _, e := range a.bearer {
			if subtle.ConstantTimeCompare(sum[:], e.tok[:]) == 1 {
				found = e
			}
		}
		if found == nil {
			return nil, errBadCredentials
		}
		return found, nil
	}
	return nil, errBadCredentials
}

// need is what a request requires: a role, and for register the app it writes.
func need(r *http.Request) (Role, string) {
	p := r.URL.Path
	if strings.HasPrefix(p, "/health/") {
		return None, ""
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return Read, ""
	}
	segs := strings.FieldsFunc(p, func(c rune) bool { return c == '/' })
	i := 0
	for i < len(segs) && (segs[i] == "eureka" || segs[i] == "v1" || segs[i] == "v2") {
		i++
	}
	if i > 0 && i+1 < len(segs) && segs[i] == "apps" {
		return Register, strings.ToUpper(segs[i+1])
	}
	return Admin, ""
}

// allowed reports whether a caller (e, nil when anonymous) with role may make a request that
// needs want, writing app.
func allowed(e *entry, role, want Role, app string) bool {
	switch {
	case want == None || role >= Admin:
		return true
	case want == Read:
		return role >= Read
	case want == Register && role == Register:
		if e == nil || len(e.c.Apps) == 0 {
			return true
		}
		for _, p := range e.c.Apps {
			if ok, _ := path.Match(p, app); ok {
				return true
			}
		}
	}
	return false
}

// Middleware refuses a client request its caller may not make: 401 (with a Basic challenge)
// without valid credentials, 403 with credentials whose role does not allow it. Peers pass.
func (a *Authorizer) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, peer := peerauth.PeerFrom(r.Context()); peer {
			next.ServeHTTP(w, r)
			return
		}
		want, app := need(r)
		e, err := a.identify(r)
		if err != nil {
			challenge(w, "401 Unauthorized: "+err.Error())
			return
		}
		role := a.anonymous
		if e != nil {
			role = e.c.Role
		}
		if allowed(e, role, want, app) {
			next.ServeHTTP(w, r)
			return
		}
		if e == nil {
			challenge(w, "401 Unauthorized: "+errNoCredentials.Error())
			return
		}
		msg := fmt.Sprintf("403 Forbidden: credential %q (role %s) may not %s %s", e.c.Name, e.c.Role, r.Method, r.URL.Path)
		http.Error(w, msg, http.StatusForbidden)
	})
}

func challenge(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="herald", charset="UTF-8"`)
	http.Error(w, msg, http.StatusUnauthorized)
}
