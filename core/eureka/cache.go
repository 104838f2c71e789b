package eureka

import (
	"bytes"
	"compress/gzip"
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
)

// CacheConfig configures the response cache of the read endpoints (reference 4.10). Zero
// durations mean Eureka's defaults; DefaultCacheConfig returns Eureka's settings in full.
type CacheConfig struct {
	// UseReadOnly puts Eureka's read-only level in front of the read-write level [eureka:
	// shouldUseReadOnlyResponseCache, default true]. Reads then see a change only after the next
	// refresh (up to UpdateInterval later); without it they see it at once.
	UseReadOnly bool
	// UpdateInterval is how often the read-only level is refreshed, aligned on wall-clock
	// multiples as Eureka does [responseCacheUpdateIntervalMs, 30s].
	UpdateInterval time.Duration
	// AutoExpiration is how long a read-write entry lives after it was generated
	// [responseCacheAutoExpirationInSeconds, 180s]. Entries are also dropped on every change that
	// concerns them, so this only bounds staleness the invalidation cannot see.
	AutoExpiration time.Duration
	// MaxEntries bounds the number of cached documents per level, so a client walking random VIP
	// names cannot grow the cache without limit. Past it, documents are generated but not kept.
	// Zero: 10000.
	MaxEntries int
	// MaxBytes bounds the bytes the cache holds: every document (plain and gzipped, plus its key),
	// counted once per level that holds it. Past it, expired documents are dropped first, then
	// others at random; a document larger than the whole budget is served but not kept.
	// Zero: DefaultCacheMaxBytes.
	MaxBytes int64
}

// DefaultCacheMaxBytes is the default MaxBytes: room for the full registry of about 20,000
// instances in JSON and XML (full and compact) in both levels, with the app and VIP documents.
const DefaultCacheMaxBytes = 256 << 20

// entryOverhead is what a cache slot costs beyond its bytes: map entry, key, entry struct.
const entryOverhead = 160

// DefaultCacheConfig returns Eureka's defaults: read-only cache on, 30 s refresh, 180 s expiry.
func DefaultCacheConfig() CacheConfig {
	return CacheConfig{UseReadOnly: true, UpdateInterval: 30 * time.Second, AutoExpiration: 180 * time.Second,
		MaxBytes: DefaultCacheMaxBytes}
}

func (c CacheConfig) withDefaults() CacheConfig {
	d := DefaultCacheConfig()
	if c.UpdateInterval <= 0 {
		c.UpdateInterval = d.UpdateInterval
	}
	if c.AutoExpiration <= 0 {
		c.AutoExpiration = d.AutoExpiration
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = 10000
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = d.MaxBytes
	}
	return c
}

type entityKind uint8

const (
	kindApps entityKind = iota
	kindDelta
	kindApp
	kindVIP
	kindSVIP
)

// Eureka's cache names of the two registry-wide documents.
const (
	allApps      = "ALL_APPS"
	allAppsDelta = "ALL_APPS_DELTA"
)

// cacheKey is Eureka's key: entity type, name, format, version and accept mode. herald has no
// remote regions, so regions are not part of it.
type cacheKey struct {
	kind    entityKind
	name    string
	format  codec.Format
	compact bool
	v1      bool
}

// payload is one generated document, plain and gzipped. absent marks an empty single-app document
// (404) or a delta while deltas are disabled (403).
type payload struct {
	plain  []byte
	gz     []byte
	absent bool
}

// cost is what keeping p under k costs, in bytes.
func (p *payload) cost(k cacheKey) int64 {
	if p == nil {
		return 0
	}
	return int64(cap(p.plain) + cap(p.gz) + len(k.name) + entryOverhead)
}

// rwEntry is a read-write cache slot. ready is closed once p is set, so concurrent misses for the
// same key generate the document once.
type rwEntry struct {
	ready   chan struct{}
	p       *payload
	created time.Time
	// size is what the entry counts in rwBytes: zero until the document is generated and kept.
	size int64
}

// loaded reports whether the document is ready; only then may p be read without waiting.
func (e *rwEntry) loaded() bool {
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}

// roEntry is a read-only cache slot; lastRead lets the refresh drop documents nobody asks for.
type roEntry struct {
	p        atomic.Pointer[payload]
	lastRead atomic.Int64 // unix seconds
}

// responseCache is Eureka's two-level response cache: a read-write level filled on demand and
// invalidated on every registry change, and an optional read-only level in front of it that only
// a timer refreshes.
type responseCache struct {
	reg   *registry.Registry
	cfg   CacheConfig
	clock registry.Clock
	log   hclog.Logger

	mu      sync.Mutex
	rw      map[cacheKey]*rwEntry
	rwBytes int64 // sum of the kept rw entries' sizes; under mu

	roMu    sync.RWMutex
	ro      map[cacheKey]*roEntry
	roBytes atomic.Int64 // sum of the ro entries' payload costs
}

func newResponseCache(reg *registry.Registry, cfg CacheConfig, clock registry.Clock, log hclog.Logger) *responseCache {
	return &responseCache{
		reg:   reg,
		cfg:   cfg,
		clock: clock,
		log:   log,
		rw:    make(map[cacheKey]*rwEntry),
		ro:    make(map[cacheKey]*roEntry),
	}
}

// get returns the document for k.
func (c *responseCache) get(k cacheKey) *payload {
	if !c.cfg.UseReadOnly {
		return c.getRW(k)
	}
	now := c.clock.Now().Unix()
	c.roMu.RLock()
	e := c.ro[k]
	c.roMu.RUnlock()
	if e != nil {
		// Only write the shared timestamp when it moves, to keep hot reads from bouncing the
		// cache line between cores.
		if e.lastRead.Load() != now {
			e.lastRead.Store(now)
		}
		return e.p.Load()
	}
	p := c.getRW(k)
	c.roMu.Lock()
	if e := c.ro[k]; e != nil {
		c.roMu.Unlock()
		return e.p.Load()
	}
	if cost := p.cost(k); len(c.ro) < c.cfg.MaxEntries && c.makeRoomRO(cost, now) {
		e := &roEntry{}
		e.p.Store(p)
		e.lastRead.Store(now)
		c.ro[k] = e
		c.roBytes.Add(cost)
	}
	c.roMu.Unlock()
	return p
}

// makeRoomRO makes room for cost bytes in the read-only level, dropping documents unread for the
// expiry first, then others; false when cost exceeds the whole budget. c.roMu must be held.
func (c *responseCache) makeRoomRO(cost, nowUnix int64) bool {
	if cost > c.cfg.MaxBytes {
		return false
	}
	if c.roBytes.Load()+cost <= c.cfg.MaxBytes {
		return true
	}
	idle := int64(c.cfg.AutoExpiration / time.Second)
	for _, pass := range [2]bool{true, false} {
		for k, e := range c.ro {
			if c.roBytes.Load()+cost <= c.cfg.MaxBytes {
				return true
			}
			if pass && nowUnix-e.lastRead.Load() <= idle {
				continue
			}
			c.roBytes.Add(-e.p.Load().cost(k))
			delete(c.ro, k)
		}
	}
	return c.roBytes.Load()+cost <= c.cfg.MaxBytes
}

// makeRoomRW is makeRoomRO for the read-write level: expired documents first, then others, never
// keep. c.mu must be held.
func (c *responseCache) makeRoomRW(cost int64, now time.Time, keep *rwEntry) bool {
	if cost > c.cfg.MaxBytes {
		return false
	}
	for _, pass := range [2]bool{true, false} {
		for k, e := range c.rw {
			if c.rwBytes+cost <= c.cfg.MaxBytes {
				return true
			}
			if e == keep || e.size == 0 || (pass && now.Sub(e.created) < c.cfg.AutoExpiration) {
				continue
			}
			c.deleteRWLocked(k, e)
		}
	}
	return c.rwBytes+cost <= c.cfg.MaxBytes
}

// deleteRWLocked removes a read-write entry and its bytes. c.mu must be held.
func (c *responseCache) deleteRWLocked(k cacheKey, e *rwEntry) {
	delete(c.rw, k)
	c.rwBytes -= e.size
	e.size = 0
}

// getRW returns the read-write level's document for k, generating it on a miss or after expiry.
func (c *responseCache) getRW(k cacheKey) *payload {
	now := c.clock.Now()
	c.mu.Lock()
	e := c.rw[k]
	if e != nil && e.loaded() && now.Sub(e.created) >= c.cfg.AutoExpiration {
		c.deleteRWLocked(k, e)
		e = nil
	}
	if e != nil {
		c.mu.Unlock()
		<-e.ready
		return e.p
	}
	e = &rwEntry{ready: make(chan struct{}), created: now}
	store := len(c.rw) < c.cfg.MaxEntries
	if store {
		c.rw[k] = e
	}
	c.mu.Unlock()

	defer close(e.ready)
	defer func() {
		// A panicking generator must not leave waiters blocked on ready, nor a slot that never
		// fills: drop the slot and let the panic reach the handler's recovery.
		if e.p == nil {
			c.mu.Lock()
			if c.rw[k] == e {
				c.deleteRWLocked(k, e)
			}
			c.mu.Unlock()
			e.p = &payload{absent: true}
		}
	}()
	p := c.generate(k)
	if store {
		// Count the document now that its size is known, or let it go if it does not fit.
		cost := p.cost(k)
		c.mu.Lock()
		if c.rw[k] == e {
			if c.makeRoomRW(cost, now, e) {
				e.size = cost
				c.rwBytes += cost
			} else {
				delete(c.rw, k)
			}
		}
		c.mu.Unlock()
	}
	e.p = p
	return e.p
}

// generate builds and serializes one document from the registry, plain and gzipped.
func (c *responseCache) generate(k cacheKey) *payload {
	var apps *registry.Applications
	var app *registry.Application
	switch k.kind {
	case kindApps:
		apps = c.reg.Applications()
	case kindDelta:
		apps = c.reg.Delta()
		if apps == nil {
			return &payload{absent: true}
		}
	case kindApp:
		app = c.reg.Application(k.name)
		if app == nil || len(app.Instances) == 0 {
			return &payload{absent: true}
		}
	case kindVIP, kindSVIP:
		apps = c.reg.VIP(k.name, k.kind == kindSVIP)
	}
	if apps == nil && app == nil {
		apps = &registry.Applications{}
	}
	opts := codec.Options{Compact: k.compact}
	var plain []byte
	if app != nil {
		if k.v1 {
			app = v1Applications(&registry.Applications{Applications: []*registry.Application{app}}).Applications[0]
		}
		plain = codec.AppendApplication(nil, k.format, app, opts)
	} else {
		if k.v1 {
			apps = v1Applications(apps)
		}
		plain = codec.AppendApplications(nil, k.format, apps, opts)
	}
	var gz bytes.Buffer
	gz.Grow(len(plain)/8 + 64)
	gzipTo(&gz, plain, gzip.DefaultCompression)
	return &payload{plain: plain, gz: gz.Bytes()}
}

// invalidate drops the read-write entries a registry change concerns: the app, both registry-wide
// documents, and the VIP and secure VIP documents. Eureka invalidates the VIP keys by the whole
// vipAddress string only, so /vips/a stays stale for an instance with "a,b" until expiry; herald
// also drops each comma-separated element, which costs nothing and cannot serve staler data.
func (c *responseCache) invalidate(ch registry.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.rw) == 0 {
		return
	}
	c.dropLocked(kindApp, strings.ToUpper(ch.App))
	c.dropLocked(kindApps, allApps)
	c.dropLocked(kindDelta, allAppsDelta)
	c.dropVIPsLocked(kindVIP, ch.VIPAddress)
	c.dropVIPsLocked(kindSVIP, ch.SecureVIPAddress)
}

func (c *responseCache) dropVIPsLocked(kind entityKind, vips string) {
	if vips == "" {
		return
	}
	c.dropLocked(kind, vips)
	if !strings.Contains(vips, ",") {
		return
	}
	for _, v := range strings.Split(vips, ",") {
		c.dropLocked(kind, v)
	}
}

func (c *responseCache) dropLocked(kind entityKind, name string) {
	for _, f := range [...]codec.Format{codec.JSON, codec.XML} {
		for _, compact := range [...]bool{false, true} {
			c.dropKeyLocked(cacheKey{kind: kind, name: name, format: f, compact: compact})
			if f == codec.XML {
				c.dropKeyLocked(cacheKey{kind: kind, name: name, format: f, compact: compact, v1: true})
			}
		}
	}
}

func (c *responseCache) dropKeyLocked(k cacheKey) {
	if e := c.rw[k]; e != nil {
		c.deleteRWLocked(k, e)
	}
}

// run refreshes the read-only level until ctx ends: first at the next wall-clock multiple of the
// interval (as Eureka), then every interval. Without the read-only level it sweeps expired
// read-write documents as often, so that documents nobody asks for again do not stay.
func (c *responseCache) run(ctx context.Context) {
	iv := c.cfg.UpdateInterval
	if !c.cfg.UseReadOnly {
		iv = min(iv, c.cfg.AutoExpiration)
	}
	now := time.Now()
	first := now.Truncate(iv).Add(iv).Sub(now)
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if c.cfg.UseReadOnly {
				c.refresh()
			} else {
				c.sweep()
			}
			t.Reset(iv)
		}
	}
}

// refresh copies every read-only key from the read-write level (regenerating what was
// invalidated), drops read-only keys unread for longer than the expiry, and sweeps expired
// read-write entries.
func (c *responseCache) refresh() {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("response cache refresh panicked", "panic", p)
		}
	}()
	now := c.clock.Now()
	idle := int64(c.cfg.AutoExpiration / time.Second)

	c.roMu.RLock()
	keys := make([]cacheKey, 0, len(c.ro))
	entries := make([]*roEntry, 0, len(c.ro))
	for k, e := range c.ro {
		keys = append(keys, k)
		entries = append(entries, e)
	}
	c.roMu.RUnlock()

	var stale []cacheKey
	for i, k := range keys {
		e := entries[i]
		if now.Unix()-e.lastRead.Load() > idle {
			stale = append(stale, k)
			continue
		}
		if p := c.getRW(k); p != e.p.Load() {
			c.roMu.Lock()
			if c.ro[k] == e {
				c.roBytes.Add(p.cost(k) - e.p.Swap(p).cost(k))
			}
			c.roMu.Unlock()
		}
	}
	if len(stale) > 0 {
		c.roMu.Lock()
		for _, k := range stale {
			if e := c.ro[k]; e != nil {
				c.roBytes.Add(-e.p.Load().cost(k))
				delete(c.ro, k)
			}
		}
		c.roMu.Unlock()
	}
	if c.roBytes.Load() > c.cfg.MaxBytes {
		// Refreshed documents grew past the budget: drop the idle ones, then others.
		c.roMu.Lock()
		c.makeRoomRO(0, now.Unix())
		c.roMu.Unlock()
	}
	c.sweep()
}

// sweep drops expired read-write documents.
func (c *responseCache) sweep() {
	now := c.clock.Now()
	c.mu.Lock()
	for k, e := range c.rw {
		if e.loaded() && now.Sub(e.created) >= c.cfg.AutoExpiration {
			c.deleteRWLocked(k, e)
		}
	}
	c.mu.Unlock()
}

// size reports the documents and bytes held by each level (tests, metrics).
func (c *responseCache) size() (rwDocs int, rwBytes int64, roDocs int, roBytes int64) {
	c.mu.Lock()
	rwDocs, rwBytes = len(c.rw), c.rwBytes
	c.mu.Unlock()
	c.roMu.RLock()
	roDocs = len(c.ro)
	c.roMu.RUnlock()
	return rwDocs, rwBytes, roDocs, c.roBytes.Load()
}

// CacheStats is the response cache's size, per level.
type CacheStats struct {
	// ReadWriteDocs and ReadWriteBytes are the documents the read-write level holds and their
	// bytes (plain and gzipped, keys and slot overhead included).
	ReadWriteDocs  int
	ReadWriteBytes int64
	// ReadOnlyDocs and ReadOnlyBytes are the same for the read-only level (zero when it is off).
	ReadOnlyDocs  int
	ReadOnlyBytes int64
}

// CacheStats returns the response cache's size, for metrics.
func (h *Handler) CacheStats() CacheStats {
	rwd, rwb, rod, rob := h.cache.size()
	return CacheStats{ReadWriteDocs: rwd, ReadWriteBytes: rwb, ReadOnlyDocs: rod, ReadOnlyBytes: rob}
}
