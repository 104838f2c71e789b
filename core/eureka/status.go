package eureka

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/core/eureka/codec"
	"github.com/heraldhq/herald/core/registry"
)

// EmergencyBanner is the text Eureka's dashboard shows while self-preservation keeps expired
// leases; operators search for it, so it is kept word for word.
const EmergencyBanner = "EMERGENCY! EUREKA MAY BE INCORRECTLY CLAIMING INSTANCES ARE UP WHEN THEY'RE NOT. " +
	"RENEWALS ARE LESSER THAN THRESHOLD AND HENCE THE INSTANCES ARE NOT BEING EXPIRED JUST TO BE SAFE."

// SelfPreservationOffBanner is Eureka's dashboard text when self-preservation is disabled.
const SelfPreservationOffBanner = "THE SELF PRESERVATION MODE IS TURNED OFF. " +
	"THIS MAY NOT PROTECT INSTANCE EXPIRY IN CASE OF NETWORK/OTHER PROBLEMS."

// statusInfo is GET {base}/status. Eureka's generalStats and applicationStats come first (their
// exact format was never pinned down, and clients do not read them); herald adds the registry's
// counters, the self-preservation state and per-peer details.
type statusInfo struct {
	XMLName          xml.Name             `json:"-" xml:"statusInfo"`
	GeneralStats     generalStats         `json:"generalStats" xml:"generalStats"`
	ApplicationStats applicationStats     `json:"applicationStats" xml:"applicationStats"`
	Registry         registryStats        `json:"registry" xml:"registry"`
	SelfPreservation selfPreservationInfo `json:"selfPreservation" xml:"selfPreservation"`
	Peers            []peerInfo           `json:"peers" xml:"peers>peer"`
}

type generalStats struct {
	NumCPUs            string `json:"num-of-cpus" xml:"num-of-cpus"`
	CurrentMemoryUsage string `json:"current-memory-usage" xml:"current-memory-usage"`
	ServerUptime       string `json:"server-uptime" xml:"server-uptime"`
}

type applicationStats struct {
	RegisteredReplicas  string `json:"registered-replicas" xml:"registered-replicas"`
	AvailableReplicas   string `json:"available-replicas" xml:"available-replicas"`
	UnavailableReplicas string `json:"unavailable-replicas" xml:"unavailable-replicas"`
}

type registryStats struct {
	Apps                    int   `json:"apps" xml:"apps"`
	Instances               int   `json:"instances" xml:"instances"`
	ExpectedClientsRenewing int   `json:"expectedClientsRenewing" xml:"expectedClientsRenewing"`
	RenewsThresholdPerMin   int   `json:"renewsThresholdPerMin" xml:"renewsThresholdPerMin"`
	RenewsLastMin           int64 `json:"renewsLastMin" xml:"renewsLastMin"`
	ReplicationsLastMin     int64 `json:"replicationsLastMin" xml:"replicationsLastMin"`
	Evicted                 int64 `json:"evicted" xml:"evicted"`
}

type selfPreservationInfo struct {
	Enabled bool `json:"enabled" xml:"enabled"`
	Active  bool `json:"active" xml:"active"`
	// ProtectedSince is epoch milliseconds, 0 while inactive.
	ProtectedSince int64  `json:"protectedSince" xml:"protectedSince"`
	Message        string `json:"message,omitempty" xml:"message,omitempty"`
}

type peerInfo struct {
	Name   string `json:"name" xml:"name"`
	URL    string `json:"url" xml:"url"`
	Up     bool   `json:"up" xml:"up"`
	Detail string `json:"detail,omitempty" xml:"detail,omitempty"`
}

func (h *Handler) statusInfo() statusInfo {
	st := h.reg.Stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	info := statusInfo{
		GeneralStats: generalStats{
			NumCPUs:            strconv.Itoa(runtime.NumCPU()),
			CurrentMemoryUsage: strconv.FormatUint(ms.HeapAlloc>>20, 10) + "mb",
			ServerUptime:       uptime(h.clock.Now().Sub(h.started)),
		},
		Registry: registryStats{
			Apps:                    st.Apps,
			Instances:               st.Instances,
			ExpectedClientsRenewing: st.ExpectedClientsRenewing,
			RenewsThresholdPerMin:   st.RenewsThresholdPerMin,
			RenewsLastMin:           st.RenewsLastMin,
			ReplicationsLastMin:     st.ReplicationsLastMin,
			Evicted:                 st.Evicted,
		},
		SelfPreservation: selfPreservationInfo{
			Enabled: st.SelfPreservationEnabled,
			Active:  st.SelfPreservationActive,
		},
		Peers: []peerInfo{},
	}
	switch {
	case !st.SelfPreservationEnabled:
		info.SelfPreservation.Message = SelfPreservationOffBanner
	case st.SelfPreservationActive:
		info.SelfPreservation.Message = EmergencyBanner
		if !st.ProtectedSince.IsZero() {
			info.SelfPreservation.ProtectedSince = st.ProtectedSince.UnixMilli()
		}
	}
	var reg, up, down []string
	if h.peers != nil {
		for _, p := range h.peers() {
			info.Peers = append(info.Peers, peerInfo(p))
			reg = append(reg, p.URL)
			if p.Up {
				up = append(up, p.URL)
			} else {
				down = append(down, p.URL)
			}
		}
	}
	info.ApplicationStats = applicationStats{
		RegisteredReplicas:  strings.Join(reg, ","),
		AvailableReplicas:   strings.Join(up, ","),
		UnavailableReplicas: strings.Join(down, ","),
	}
	return info
}

func uptime(d time.Duration) string {
	d = d.Round(time.Second)
	return strconv.Itoa(int(d.Hours())) + ":" + twoDigits(int(d.Minutes())%60) + ":" + twoDigits(int(d.Seconds())%60)
}

func twoDigits(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// serveStatus is GET {base}/status, negotiated like the single-instance endpoints.
func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request) {
	f, ok := negotiate(r)
	if !ok {
		plainText(w, http.StatusNotAcceptable, "acceptable types: application/xml, application/json")
		return
	}
	info := h.statusInfo()
	var b []byte
	var err error
	if f == codec.JSON {
		b, err = json.Marshal(info)
	} else {
		b, err = xml.Marshal(info)
	}
	if err != nil {
		h.log.Error("encoding status", "error", err)
		plainText(w, http.StatusInternalServerError, "cannot encode status")
		return
	}
	writeEncoded(w, r, http.StatusOK, contentType(f), b)
}

// serveOverrides is GET /serverinfo/statusoverrides: the override map as a JSON object.
func (h *Handler) serveOverrides(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(h.reg.Overrides())
	if err != nil {
		h.log.Error("encoding status overrides", "error", err)
		plainText(w, http.StatusInternalServerError, "cannot encode status overrides")
		return
	}
	writeEncoded(w, r, http.StatusOK, contentJSON, b)
}

// dashboardData is what the dashboard template renders.
type dashboardData struct {
	Status    statusInfo
	Banner    string
	Warnings  []string
	Emergency bool
	Apps      []dashboardApp
	Now       string
}

type dashboardApp struct {
	Name      string
	Statuses  string
	Instances []*registry.Instance
}

// serveDashboard renders the HTML dashboard. It reads the registry directly rather than through
// the response cache, so operators see the state as it is.
func (h *Handler) serveDashboard(w http.ResponseWriter, r *http.Request) {
	d := dashboardData{Status: h.statusInfo(), Now: h.clock.Now().UTC().Format(time.RFC3339)}
	d.Banner = d.Status.SelfPreservation.Message
	d.Warnings = h.warnings
	d.Emergency = d.Status.SelfPreservation.Active
	if apps := h.reg.Applications(); apps != nil {
		for _, a := range apps.Applications {
			if len(a.Instances) == 0 {
				continue
			}
			counts := map[registry.Status]int{}
			for _, inst := range a.Instances {
				counts[inst.Status]++
			}
			var parts []string
			for s, n := range counts {
				parts = append(parts, string(s)+" ("+strconv.Itoa(n)+")")
			}
			sort.Strings(parts)
			insts := append([]*registry.Instance(nil), a.Instances...)
			sort.Slice(insts, func(i, j int) bool { return insts[i].ID() < insts[j].ID() })
			d.Apps = append(d.Apps, dashboardApp{Name: a.Name, Statuses: strings.Join(parts, ", "), Instances: insts})
		}
		sort.Slice(d.Apps, func(i, j int) bool { return d.Apps[i].Name < d.Apps[j].Name })
	}
	var buf bytes.Buffer
	if err := h.dash.Execute(&buf, d); err != nil {
		h.log.Error("rendering dashboard", "error", err)
		plainText(w, http.StatusInternalServerError, "cannot render dashboard")
		return
	}
	writeEncoded(w, r, http.StatusOK, "text/html; charset=utf-8", buf.Bytes())
}

const dashboardTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>herald</title>
<style>
body{font-family:sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-bottom:1.5em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f0f0f0}
.banner{color:#b00;font-weight:bold;margin:1em 0}
</style>
</head>
<body>
<h1>herald</h1>
{{if .Banner}}<p class="banner">{{.Banner}}</p>{{end}}
{{range .Warnings}}<p class="banner">WARNING: {{.}}</p>{{end}}
<h2>General</h2>
<table>
<tr><th>Time (UTC)</th><td>{{.Now}}</td></tr>
<tr><th>Uptime</th><td>{{.Status.GeneralStats.ServerUptime}}</td></tr>
<tr><th>Applications</th><td>{{.Status.Registry.Apps}}</td></tr>
<tr><th>Instances</th><td>{{.Status.Registry.Instances}}</td></tr>
<tr><th>Self-preservation</th><td>{{if .Status.SelfPreservation.Enabled}}enabled{{else}}disabled{{end}}, {{if .Emergency}}active (leases are not expiring){{else}}inactive{{end}}</td></tr>
<tr><th>Renews threshold / last minute</th><td>{{.Status.Registry.RenewsThresholdPerMin}} / {{.Status.Registry.RenewsLastMin}}</td></tr>
<tr><th>Expected renewing clients</th><td>{{.Status.Registry.ExpectedClientsRenewing}}</td></tr>
<tr><th>Replications last minute</th><td>{{.Status.Registry.ReplicationsLastMin}}</td></tr>
</table>
<h2>Peers</h2>
{{if .Status.Peers}}<table>
<tr><th>Name</th><th>URL</th><th>State</th><th>Detail</th></tr>
{{range .Status.Peers}}<tr><td>{{.Name}}</td><td>{{.URL}}</td><td>{{if .Up}}up{{else}}down{{end}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>{{else}}<p>No peers.</p>{{end}}
<h2>Instances currently registered</h2>
{{if .Apps}}<table>
<tr><th>Application</th><th>Status</th><th>Instances</th></tr>
{{range .Apps}}<tr><td>{{.Name}}</td><td>{{.Statuses}}</td><td>{{range .Instances}}{{.ID}} {{.Status}} ({{.IPAddr}}){{if .HomePageURL}} <a href="{{.HomePageURL}}">home</a>{{end}}<br>{{end}}</td></tr>
{{end}}</table>{{else}}<p>No instances available.</p>{{end}}
</body>
</html>
`
