package eureka

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"runtime"
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
	Name      string `json:"name" xml:"name"`
	URL       string `json:"url" xml:"url"`
	Up        bool   `json:"up" xml:"up"`
	Detail    string `json:"detail,omitempty" xml:"detail,omitempty"`
	NodeName  string `json:"nodeName,omitempty" xml:"nodeName,omitempty"`
	Health    string `json:"health,omitempty" xml:"health,omitempty"`
	Queue     int64  `json:"queue" xml:"queue"`
	Dropped   int64  `json:"dropped" xml:"dropped"`
	SendP99Ms int64  `json:"sendP99Ms" xml:"sendP99Ms"`
	LastError string `json:"lastError,omitempty" xml:"lastError,omitempty"`
}

func (h *Handler) statusInfo() statusInfo {
	var peers []PeerStatus
	if h.peers != nil {
		peers = h.peers()
	}
	return h.statusInfoOf(h.reg.Stats(), peers)
}

// statusInfoOf is the status summary of st and peers.
func (h *Handler) statusInfoOf(st registry.Stats, peers []PeerStatus) statusInfo {
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
		if h.emergencyShown(st) {
			info.SelfPreservation.Message = EmergencyBanner
		}
		if !st.ProtectedSince.IsZero() {
			info.SelfPreservation.ProtectedSince = st.ProtectedSince.UnixMilli()
		}
	}
	var reg, up, down []string
	for _, p := range peers {
		info.Peers = append(info.Peers, peerInfo{Name: p.Name, URL: p.URL, Up: p.Up, Detail: p.Detail,
			NodeName: p.NodeName, Health: p.Health, Queue: p.Queue, Dropped: p.Dropped,
			SendP99Ms: p.SendP99.Milliseconds(), LastError: p.LastError})
		reg = append(reg, p.URL)
		if p.Up {
			up = append(up, p.URL)
		} else {
			down = append(down, p.URL)
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
