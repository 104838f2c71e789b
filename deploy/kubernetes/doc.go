// Package kubernetes holds herald's Kubernetes manifests (a StatefulSet of three nodes, a
// headless Service for DNS peer discovery, a PodDisruptionBudget, the configuration as a
// ConfigMap) and the tests that decode them strictly with the Kubernetes API types and load the
// embedded configuration with herald's own loader. It is a module of its own, so that the
// Kubernetes API modules stay out of herald's dependencies:
//
//	cd deploy/kubernetes && go test ./...
package kubernetes
