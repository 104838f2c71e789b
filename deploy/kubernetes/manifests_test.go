package kubernetes

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/heraldhq/herald/core/config"
	"github.com/heraldhq/herald/core/node"
)

// manifests are the files kustomization.yaml lists, decoded strictly: an unknown or misspelt
// field anywhere fails the test, as `kubectl apply --validate=strict` would.
type manifests struct {
	configMaps   []*corev1.ConfigMap
	services     []*corev1.Service
	statefulSets []*appsv1.StatefulSet
	pdbs         []*policyv1.PodDisruptionBudget
}

type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

func load(t *testing.T) *manifests {
	t.Helper()
	raw, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	yamls, _ := filepath.Glob("*.yaml")
	for _, f := range yamls {
		if f != "kustomization.yaml" && !slices.Contains(k.Resources, f) {
			t.Errorf("%s is not listed in kustomization.yaml", f)
		}
	}
	m := &manifests{}
	for _, f := range k.Resources {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("kustomization.yaml lists %s: %v", f, err)
		}
		for i, doc := range splitDocs(raw) {
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			var obj any
			switch meta.APIVersion + " " + meta.Kind {
			case "v1 ConfigMap":
				o := &corev1.ConfigMap{}
				m.configMaps, obj = append(m.configMaps, o), o
			case "v1 Service":
				o := &corev1.Service{}
				m.services, obj = append(m.services, o), o
			case "apps/v1 StatefulSet":
				o := &appsv1.StatefulSet{}
				m.statefulSets, obj = append(m.statefulSets, o), o
			case "policy/v1 PodDisruptionBudget":
				o := &policyv1.PodDisruptionBudget{}
				m.pdbs, obj = append(m.pdbs, o), o
			default:
				t.Fatalf("%s document %d: unexpected %s %s", f, i, meta.APIVersion, meta.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s document %d (%s): %v", f, i, meta.Kind, err)
			}
		}
	}
	if len(m.configMaps) != 1 || len(m.statefulSets) != 1 || len(m.pdbs) != 1 || len(m.services) != 2 {
		t.Fatalf("want one ConfigMap, StatefulSet and PodDisruptionBudget and two Services; got %d, %d, %d, %d",
			len(m.configMaps), len(m.statefulSets), len(m.pdbs), len(m.services))
	}
	return m
}

func splitDocs(raw []byte) [][]byte {
	var out [][]byte
	for _, d := range bytes.Split(raw, []byte("\n---\n")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			out = append(out, d)
		}
	}
	return out
}

func stripComments(d []byte) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(string(d), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.Bytes()
}

func (m *manifests) service(t *testing.T, name string) *corev1.Service {
	t.Helper()
	for _, s := range m.services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no Service %s", name)
	return nil
}

func container(t *testing.T, ss *appsv1.StatefulSet) corev1.Container {
	t.Helper()
	if len(ss.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(ss.Spec.Template.Spec.Containers))
	}
	return ss.Spec.Template.Spec.Containers[0]
}

// The StatefulSet, its headless Service and the PodDisruptionBudget fit together: the Service
// names the StatefulSet's pods, publishes them before they are ready (a starting node must find
// its peers), and selects the same pods as the PDB; the probes ask the health endpoints on the
// port the configuration listens on.
func TestManifestsFitTogether(t *testing.T) {
	m := load(t)
	ss := m.statefulSets[0]
	if *ss.Spec.Replicas != 3 {
		t.Errorf("replicas %d, want 3", *ss.Spec.Replicas)
	}
	if ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q: the pods of a new cluster must start together", ss.Spec.PodManagementPolicy)
	}
	headless := m.service(t, ss.Spec.ServiceName)
	if headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: clusterIP %q, publishNotReadyAddresses %v; want a headless Service publishing not-ready pods",
			headless.Name, headless.Spec.ClusterIP, headless.Spec.PublishNotReadyAddresses)
	}
	podLabels := ss.Spec.Template.Labels
	selects := func(sel map[string]string) bool {
		for k, v := range sel {
			if podLabels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !selects(ss.Spec.Selector.MatchLabels) {
		t.Error("the StatefulSet's selector does not select its pods")
	}
	for _, s := range m.services {
		if !selects(s.Spec.Selector) {
			t.Errorf("Service %s does not select the pods", s.Name)
		}
	}
	pdb := m.pdbs[0]
	if !selects(pdb.Spec.Selector.MatchLabels) {
		t.Error("the PodDisruptionBudget does not select the pods")
	}
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
	}

	c := container(t, ss)
	port := -1
	for _, p := range c.Ports {
		if p.Name == "eureka" {
			port = int(p.ContainerPort)
		}
	}
	if port < 0 {
		t.Fatal("the container has no port named eureka")
	}
	for _, p := range headless.Spec.Ports {
		if p.Name != "eureka" || p.Port != int32(port) {
			t.Errorf("headless Service port %s/%d: the SRV records herald reads are _eureka._tcp, on the container's port %d", p.Name, p.Port, port)
		}
	}
	for name, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		want := node.LivePath
		if name == "readiness" {
			want = node.ReadyPath
		}
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("no %s probe over HTTP", name)
			continue
		}
		if probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "eureka" || probe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("%s probe: %s %s port %s, want HTTPS %s on port eureka", name, probe.HTTPGet.Scheme, probe.HTTPGet.Path, probe.HTTPGet.Port.String(), want)
		}
	}

	// Memory sized from BENCHMARKS.md: about 20 MiB empty and 3 KiB per instance per node.
	req, lim := c.Resources.Requests[corev1.ResourceMemory], c.Resources.Limits[corev1.ResourceMemory]
	if req.Cmp(resource.MustParse("128Mi")) < 0 || lim.Cmp(req) < 0 {
		t.Errorf("memory request %s, limit %s", req.String(), lim.String())
	}
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
		t.Error("no CPU request")
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("the container must run with a read-only root file system and no privilege escalation")
	}
	if ps := ss.Spec.Template.Spec.SecurityContext; ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
		t.Error("the pod must run as non-root")
	}
}

// The ConfigMap's config.hcl references only options herald has, and is valid as the pod sees
// it: the TLS files are those of the mounted Secret, the DNS name is the headless Service's SRV
// name, and the termination grace period covers the graceful stop.
func TestEmbeddedConfigLoads(t *testing.T) {
	m := load(t)
	ss := m.statefulSets[0]
	c := container(t, ss)
	hcl, ok := m.configMaps[0].Data["config.hcl"]
	if !ok {
		t.Fatal("the ConfigMap has no config.hcl")
	}

	// Where the container finds its configuration and its TLS material.
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.Name] = vm
	}
	vols := map[string]corev1.Volume{}
	for _, v := range ss.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	cfgMount, tlsMount := "", ""
	for name, vm := range mounts {
		v := vols[name]
		switch {
		case v.ConfigMap != nil && v.ConfigMap.Name == m.configMaps[0].Name:
			cfgMount = vm.MountPath
		case v.Secret != nil:
			tlsMount = vm.MountPath
		}
	}
	if !slices.Equal(c.Args, []string{"-config", cfgMount}) || cfgMount != "/etc/herald/config.hcl" {
		t.Errorf("args %q, ConfigMap mounted at %q: want -config /etc/herald/config.hcl", c.Args, cfgMount)
	}
	if tlsMount != "/etc/herald/tls" {
		t.Errorf("the TLS Secret is mounted at %q, want /etc/herald/tls", tlsMount)
	}

	// The pod's environment, as the config's env() calls read it.
	const ns = "prod"
	t.Setenv("POD_NAME", "herald-1")
	t.Setenv("POD_NAMESPACE", ns)
	// The files of the Secret: real ones in a directory of this test.
	dir := t.TempDir()
	writeTLS(t, dir)
	cfg, err := config.Parse("config.hcl", []byte(hcl), nil, []string{
		"tls.cert_file=" + filepath.Join(dir, "tls.crt"),
		"tls.key_file=" + filepath.Join(dir, "tls.key"),
		"tls.ca_file=" + filepath.Join(dir, "ca.crt"),
	})
	if err != nil {
		t.Fatalf("config.hcl in the ConfigMap:\n%v", err)
	}
	// The paths the file gives are the Secret's keys in its mount.
	for key, f := range map[string]string{"tls.cert_file": "tls.crt", "tls.key_file": "tls.key", "tls.ca_file": "ca.crt"} {
		if !strings.Contains(hcl, fmt.Sprintf("%q", filepath.Join(tlsMount, f))) {
			t.Errorf("%s should be %s, the Secret's key %s", key, filepath.Join(tlsMount, f), f)
		}
	}

	if cfg.Node.Port != 8761 || cfg.Node.BindAddr != "0.0.0.0" {
		t.Errorf("node listens on %s:%d, want 0.0.0.0:8761 (the container port)", cfg.Node.BindAddr, cfg.Node.Port)
	}
	wantDNS := "_eureka._tcp." + ss.Spec.ServiceName + "." + ns + ".svc.cluster.local"
	if cfg.Cluster.DNS.Name != wantDNS || !cfg.Cluster.DNS.SRV {
		t.Errorf("cluster.dns: name %q srv %v, want the headless Service's SRV name %q", cfg.Cluster.DNS.Name, cfg.Cluster.DNS.SRV, wantDNS)
	}
	wantURL := "https://herald-1." + ss.Spec.ServiceName + "." + ns + ".svc.cluster.local:8761/eureka/"
	if cfg.Node.AdvertiseURL != wantURL || cfg.Node.Name != "herald-1" {
		t.Errorf("node: name %q advertise_url %q, want herald-1 and %q", cfg.Node.Name, cfg.Node.AdvertiseURL, wantURL)
	}
	if !cfg.Cluster.PeerAuth.MTLS {
		t.Error("peers must authenticate (mutual TLS)")
	}
	grace := time.Duration(*ss.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	if stop := cfg.HTTP.ShutdownDelay + cfg.HTTP.ShutdownTimeout; grace <= stop {
		t.Errorf("terminationGracePeriodSeconds %v does not cover shutdown_delay + shutdown_timeout = %v", grace, stop)
	}
}

// writeTLS writes a CA and a certificate for the pods, as the Secret herald-tls holds them.
func writeTLS(t *testing.T, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "herald test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "herald"},
		DNSNames:  []string{"*.herald.prod.svc.cluster.local"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.crt":  {Type: "CERTIFICATE", Bytes: caDER},
		"tls.crt": {Type: "CERTIFICATE", Bytes: der},
		"tls.key": {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
