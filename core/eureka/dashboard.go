package eureka

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/core/registry"
)

// The dashboard (GET /) is rendered on the server from the registry as it is, without the
// response cache. It is paged so that no page grows with the registry: the overview lists
// DashboardAppsPerPage applications with their counts, and an application's instances are shown
// only on its own view (?app=NAME), DashboardInstancesPerPage at a time. ?q= filters the
// applications by name (on an application's view: its instances by id, host or address), ?page=
// picks the page and ?refresh= the auto-refresh period in seconds (0 turns it off). The page loads
// nothing from anywhere (no script, no external style or image), which its Content-Security-Policy
// enforces.
const (
	// DashboardAppsPerPage is how many applications one overview page lists.
	DashboardAppsPerPage = 50
	// DashboardInstancesPerPage is how many instances one page of an application's view lists.
	DashboardInstancesPerPage = 100
	// DefaultDashboardRefresh is the dashboard's auto-refresh period unless ?refresh= says otherwise.
	DefaultDashboardRefresh = 10 * time.Second
	// DefaultSelfPreservationGrace is DashboardOptions.SelfPreservationGrace when zero: Eureka's
	// renewalThresholdUpdateIntervalMs default, the period in which a started node learns how
	// many clients renew.
	DefaultSelfPreservationGrace = 15 * time.Minute
)

// dashboardTemplate is the page, rendered with html/template (everything is escaped).
//
//go:embed dashboard.html
var dashboardTemplate string

// dashboardCSP allows the page its inline style and nothing else from anywhere.
const dashboardCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; " +
	"base-uri 'none'; frame-ancestors 'none'"

// HealthCheck is one condition of the node's readiness, as the dashboard shows it.
type HealthCheck struct {
	// Name identifies the condition ("startup_sync", "plugin transport grpc", ...).
	Name string
	// OK is true when the condition holds.
	OK bool
	// Detail says why, for an operator (a plugin's state and restarts, say).
	Detail string
}

// DashboardOptions configures the HTML dashboard. All fields are optional.
type DashboardOptions struct {
	// NodeName and Version are shown in the page's header.
	NodeName string
	Version  string
	// URL is the node's own Eureka base URL; empty: the one the browser used.
	URL string
	// MetricsPath, when set, is linked from the page (the node's Prometheus metrics).
	MetricsPath string
	// HealthPath, when set, is linked from the page (the node's readiness endpoint).
	HealthPath string
	// TraceURL, when set, is linked from the page as the trace UI.
	TraceURL string
	// Health, when set, lists the node's readiness conditions (startup sync, reads, plugin
	// processes with their state and restarts).
	Health func() []HealthCheck
	// SelfPreservationGrace is how long after start the emergency banner is held back while
	// self-preservation is active: a fresh node has not yet learned how many clients renew, so
	// renewals are necessarily below the threshold (Eureka's isBelowRenewThresold is false during
	// its start-up wait for the same reason). Zero: DefaultSelfPreservationGrace; negative: none.
	SelfPreservationGrace time.Duration
}

func (o DashboardOptions) withDefaults() DashboardOptions {
	if o.SelfPreservationGrace == 0 {
		o.SelfPreservationGrace = DefaultSelfPreservationGrace
	}
	if o.SelfPreservationGrace < 0 {
		o.SelfPreservationGrace = 0
	}
	return o
}

// emergencyShown reports whether Eureka's emergency banner belongs on the page for st, whose
// self-preservation is active: only once the node knows how many clients to expect (a positive
// expectation and threshold) and the grace period after start has passed.
func (h *Handler) emergencyShown(st registry.Stats) bool {
	if st.ExpectedClientsRenewing <= 0 || st.RenewsThresholdPerMin <= 0 {
		return false
	}
	return h.clock.Now().Sub(h.started) >= h.dashOpts.SelfPreservationGrace
}

// dashboardView is what the dashboard template renders.
type dashboardView struct {
	NodeName, Version, Uptime, Now string
	// RefreshSeconds is the auto-refresh period, 0 when off.
	RefreshSeconds                      int
	RefreshMeta                         template.HTML
	RefreshOn, RefreshOff, RefreshParam string
	MetricsPath, TraceURL               string
	HealthPath                          string
	Banner                              string
	Warnings                            []string
	Registry                            registryStats
	SelfPreservation                    string
	SelfPreservationState               string
	Nodes                               []dashNode
	PeersUp, Peers                      int
	Health                              []HealthCheck
	HealthOK                            bool
	Query                               string
	OverviewURL                         string
	// Overview: one page of applications.
	Apps                   []dashApp
	AppsMatched, AppsTotal int
	// App view: one page of an application's instances (App is "" on the overview).
	App         string
	AppFound    bool
	AppStatuses []statusCount
	AppTotal    int
	AppMatched  int
	Instances   []dashInstance
	Page        dashPage
}

type dashNode struct {
	Name, URL, Health, HealthClass string
	P99, Queue, Dropped, LastError string
	Self                           bool
}

type dashApp struct {
	Name, Link string
	Instances  int
	Statuses   []statusCount
}

type statusCount struct {
	Status string
	N      int
}

type dashInstance struct {
	ID, Status, Host, IP, Port, VIP   string
	LastRenewal, HomePage, StatusPage string
}

type dashPage struct {
	Page, Pages, From, To int
	Prev, Next            string
}

// dashboardFuncs are the template's helpers.
var dashboardFuncs = template.FuncMap{
	"statusClass": func(s string) string {
		switch registry.Status(s) {
		case registry.StatusUp:
			return "up"
		case registry.StatusDown:
			return "down"
		default:
			return "other"
		}
	},
}

// dashboardQuery is the page's query: what it shows and how often it reloads.
type dashboardQuery struct {
	q, app  string
	page    int
	refresh int // seconds; -1 = default
}

func parseDashboardQuery(r *http.Request) dashboardQuery {
	v := r.URL.Query()
	d := dashboardQuery{q: strings.TrimSpace(v.Get("q")), app: strings.ToUpper(strings.TrimSpace(v.Get("app"))), page: 1, refresh: -1}
	if len(d.q) > 200 {
		d.q = d.q[:200]
	}
	if p, err := strconv.Atoi(v.Get("page")); err == nil && p > 1 {
		d.page = p
	}
	if s, err := strconv.Atoi(v.Get("refresh")); err == nil && s >= 0 {
		switch {
		case s == 0:
			d.refresh = 0
		case s < 5:
			d.refresh = 5
		case s > 3600:
			d.refresh = 3600
		default:
			d.refresh = s
		}
	}
	return d
}

// url is the dashboard link for this query with the given changes; the refresh setting carries
// over when it is not the default.
func (d dashboardQuery) url(app, q string, page, refresh int) string {
	v := url.Values{}
	if app != "" {
		v.Set("app", app)
	}
	if q != "" {
		v.Set("q", q)
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	if refresh >= 0 {
		v.Set("refresh", strconv.Itoa(refresh))
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

// serveDashboard renders the HTML dashboard.
func (h *Handler) serveDashboard(w http.ResponseWriter, r *http.Request) {
	q := parseDashboardQuery(r)
	v := h.dashboardView(r, q)
	var buf bytes.Buffer
	if err := h.dash.Execute(&buf, v); err != nil {
		h.log.Error("rendering dashboard", "error", err)
		plainText(w, http.StatusInternalServerError, "cannot render dashboard")
		return
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", dashboardCSP)
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	writeEncoded(w, r, http.StatusOK, "text/html; charset=utf-8", buf.Bytes())
}

func (h *Handler) dashboardView(r *http.Request, q dashboardQuery) dashboardView {
	now := h.clock.Now()
	st := h.reg.Stats()
	var peers []PeerStatus
	if h.peers != nil {
		peers = h.peers()
	}
	info := h.statusInfoOf(st, peers)
	o := h.dashOpts
	v := dashboardView{
		NodeName:    o.NodeName,
		Version:     o.Version,
		Uptime:      humanDuration(now.Sub(h.started)),
		Now:         now.UTC().Format("2006-01-02 15:04:05 UTC"),
		MetricsPath: o.MetricsPath,
		TraceURL:    o.TraceURL,
		HealthPath:  o.HealthPath,
		Banner:      info.SelfPreservation.Message,
		Warnings:    h.warnings,
		Registry:    info.Registry,
		Query:       q.q,
		App:         q.app,
	}
	if v.NodeName == "" {
		v.NodeName = r.Host
	}
	v.RefreshSeconds = int(DefaultDashboardRefresh / time.Second)
	if q.refresh >= 0 {
		v.RefreshSeconds = q.refresh
	}
	if v.RefreshSeconds > 0 {
		// An integer only: safe to write as markup.
		v.RefreshMeta = template.HTML(`<meta http-equiv="refresh" content="` + strconv.Itoa(v.RefreshSeconds) + `">`)
	}
	if q.refresh >= 0 {
		v.RefreshParam = strconv.Itoa(q.refresh)
	}
	v.RefreshOn = q.url(q.app, q.q, q.page, -1)
	v.RefreshOff = q.url(q.app, q.q, q.page, 0)
	keep := q.refresh
	v.OverviewURL = q.url("", "", 1, keep)

	// Self-preservation, with Eureka's banners and the start-up grace.
	switch {
	case !st.SelfPreservationEnabled:
		v.SelfPreservationState, v.SelfPreservation = "off", "disabled: expired leases are evicted whatever the renewal rate"
	case !st.SelfPreservationActive:
		v.SelfPreservationState = "ok"
		v.SelfPreservation = "armed, not active: renewals in the last minute (" + strconv.FormatInt(st.RenewsLastMin, 10) +
			") exceed the threshold (" + strconv.Itoa(st.RenewsThresholdPerMin) + "), expired leases are evicted"
	case v.Banner == "":
		v.SelfPreservationState = "learning"
		until := h.started.Add(o.SelfPreservationGrace).UTC().Format("15:04:05 UTC")
		v.SelfPreservation = "learning the renewal threshold: renewals are below it, so expired leases are kept, " +
			"but no emergency is declared before " + until + " (the first renewal threshold period after start), " +
			"nor while no renewing client is expected"
	default:
		v.SelfPreservationState = "active"
		v.SelfPreservation = "ACTIVE: renewals in the last minute (" + strconv.FormatInt(st.RenewsLastMin, 10) +
			") are not above the threshold (" + strconv.Itoa(st.RenewsThresholdPerMin) + "), expired leases are kept"
		if !st.ProtectedSince.IsZero() {
			v.SelfPreservation += " since " + st.ProtectedSince.UTC().Format("2006-01-02 15:04:05 UTC")
		}
	}

	// Health of this node, then the cluster: this node first, then its peers.
	v.HealthOK = true
	if o.Health != nil {
		v.Health = o.Health()
		for _, c := range v.Health {
			v.HealthOK = v.HealthOK && c.OK
		}
	}
	self := dashNode{Name: v.NodeName, URL: o.URL, Self: true, Health: "ready", HealthClass: "up",
		P99: "–", Queue: "–", Dropped: "–"}
	if !v.HealthOK {
		self.Health, self.HealthClass = "not ready", "down"
	}
	if self.URL == "" {
		self.URL = selfURL(r)
	}
	v.Nodes = append(v.Nodes, self)
	for _, p := range peers {
		v.Peers++
		n := dashNode{Name: p.NodeName, URL: p.URL, Health: p.Health, LastError: p.LastError,
			Queue: strconv.FormatInt(p.Queue, 10), Dropped: strconv.FormatInt(p.Dropped, 10), P99: "–"}
		if n.Name == "" {
			n.Name = hostOf(p.URL, p.Name)
		}
		if p.SendP99 > 0 {
			n.P99 = formatLatency(p.SendP99)
		}
		switch {
		case !p.Up:
			n.HealthClass = "down"
			if n.Health == "" {
				n.Health = "down"
			}
		case p.Health == "" || p.Health == "ready":
			n.HealthClass = "up"
			v.PeersUp++
			if n.Health == "" {
				n.Health = "up"
			}
		default:
			n.HealthClass = "down"
		}
		if n.LastError == "" && !p.Up {
			n.LastError = p.Detail
		}
		v.Nodes = append(v.Nodes, n)
	}

	if q.app != "" {
		h.dashboardAppView(&v, q)
	} else {
		h.dashboardOverview(&v, q)
	}
	return v
}

// dashboardOverview fills one page of the applications that match q.q.
func (h *Handler) dashboardOverview(v *dashboardView, q dashboardQuery) {
	all := h.reg.AppSummaries()
	v.AppsTotal = len(all)
	needle := strings.ToUpper(q.q)
	matched := all[:0:0]
	for _, a := range all {
		if needle == "" || strings.Contains(a.Name, needle) {
			matched = append(matched, a)
		}
	}
	v.AppsMatched = len(matched)
	from, to := v.paginate(q, len(matched), DashboardAppsPerPage)
	for _, a := range matched[from:to] {
		v.Apps = append(v.Apps, dashApp{Name: a.Name, Instances: a.Instances, Statuses: statusCounts(a.Statuses),
			Link: q.url(a.Name, "", 1, q.refresh)})
	}
}

// dashboardAppView fills one page of an application's instances that match q.q.
func (h *Handler) dashboardAppView(v *dashboardView, q dashboardQuery) {
	a := h.reg.Application(q.app)
	if a == nil {
		return
	}
	v.AppFound = true
	v.AppTotal = len(a.Instances)
	counts := map[registry.Status]int{}
	needle := strings.ToLower(q.q)
	matched := a.Instances[:0:0]
	for _, inst := range a.Instances {
		counts[inst.Status]++
		if needle == "" || strings.Contains(strings.ToLower(inst.ID()), needle) ||
			strings.Contains(strings.ToLower(inst.HostName), needle) || strings.Contains(inst.IPAddr, needle) {
			matched = append(matched, inst)
		}
	}
	v.AppStatuses = statusCounts(counts)
	v.AppMatched = len(matched)
	from, to := v.paginate(q, len(matched), DashboardInstancesPerPage)
	for _, inst := range matched[from:to] {
		d := dashInstance{ID: inst.ID(), Status: string(inst.Status), Host: inst.HostName, IP: inst.IPAddr,
			VIP: inst.VIPAddress, HomePage: inst.HomePageURL, StatusPage: inst.StatusPageURL}
		if inst.Port.Enabled || inst.Port.Number > 0 {
			d.Port = strconv.Itoa(inst.Port.Number)
		}
		if inst.SecurePort.Enabled {
			if d.Port != "" {
				d.Port += ", "
			}
			d.Port += strconv.Itoa(inst.SecurePort.Number) + " (TLS)"
		}
		if ts := inst.LeaseInfo.LastRenewalTimestamp; ts > 0 {
			d.LastRenewal = time.UnixMilli(ts).UTC().Format("15:04:05")
		}
		v.Instances = append(v.Instances, d)
	}
}

// paginate fills v.Page for n items, size a page, and returns the slice bounds of q's page.
func (v *dashboardView) paginate(q dashboardQuery, n, size int) (from, to int) {
	pages := (n + size - 1) / size
	if pages < 1 {
		pages = 1
	}
	page := min(q.page, pages)
	from = (page - 1) * size
	to = min(from+size, n)
	v.Page = dashPage{Page: page, Pages: pages, From: from + 1, To: to}
	if n == 0 {
		v.Page.From = 0
	}
	if page > 1 {
		v.Page.Prev = q.url(q.app, q.q, page-1, q.refresh)
	}
	if page < pages {
		v.Page.Next = q.url(q.app, q.q, page+1, q.refresh)
	}
	return from, to
}

func statusCounts(m map[registry.Status]int) []statusCount {
	out := make([]statusCount, 0, len(m))
	for s, n := range m {
		out = append(out, statusCount{Status: string(s), N: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Status > out[j].Status }) // UP first
	return out
}

// selfURL is this node's Eureka base URL as the browser reached it.
func selfURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/eureka/"
}

// hostOf is host:port of a peer's URL, for a peer whose name is not known yet.
func hostOf(raw, fallback string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return fallback
}

func formatLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return strconv.FormatInt(d.Microseconds(), 10) + " µs"
	case d < 10*time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
	default:
		return d.Round(time.Second).String()
	}
}

// humanDuration is an uptime such as "3d 4h 12m" or "42s".
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	days := int(d / (24 * time.Hour))
	d -= time.Duration(days) * 24 * time.Hour
	hrs, mins, secs := int(d/time.Hour), int(d/time.Minute)%60, int(d/time.Second)%60
	switch {
	case days > 0:
		return strconv.Itoa(days) + "d " + strconv.Itoa(hrs) + "h " + strconv.Itoa(mins) + "m"
	case hrs > 0:
		return strconv.Itoa(hrs) + "h " + strconv.Itoa(mins) + "m"
	case mins > 0:
		return strconv.Itoa(mins) + "m " + strconv.Itoa(secs) + "s"
	default:
		return strconv.Itoa(secs) + "s"
	}
}
