package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/heraldhq/herald/sdk/peerauth"
)

const tlsUsage = `Usage:
  herald tls ca create   [-dir DIR] [-name NAME] [-days N]
  herald tls cert create -node NAME [-host H ...] [-ca FILE -ca-key FILE] [-dir DIR] [-days N]
  herald tls secret create [-out FILE]

Makes what a cluster needs to authenticate its peers, without openssl:
  ca create      a cluster CA: herald-ca.pem and herald-ca-key.pem (keep the key offline)
  cert create    a node certificate signed by the CA: NAME.pem and NAME-key.pem, for the node's
                 tls { cert_file key_file } and, with the CA as ca_file, for mutual TLS between peers.
                 -host adds the host names and addresses peers and clients reach the node by.
  secret create  a random cluster secret for cluster { peer_auth { secret_file } }

Files are written with mode 0600 and never overwritten.
`

func cmdTLS(args []string, stdout, stderr io.Writer) int {
	if len(args) >= 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(stdout, tlsUsage)
		return 0
	}
	if len(args) < 2 || args[1] != "create" {
		fmt.Fprint(stderr, tlsUsage)
		return 2
	}
	switch args[0] {
	case "ca":
		return tlsCA(args[2:], stdout, stderr)
	case "cert":
		return tlsCert(args[2:], stdout, stderr)
	case "secret":
		return tlsSecret(args[2:], stdout, stderr)
	}
	fmt.Fprint(stderr, tlsUsage)
	return 2
}

func tlsFlags(name string, stdout, stderr io.Writer) (*flag.FlagSet, *string, *int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "Usage of %s:\n", name)
		fs.PrintDefaults()
	}
	dir := fs.String("dir", ".", "directory to write the files to")
	days := fs.Int("days", 0, "validity in days (CA: 5 years, node certificates: 1 year)")
	return fs, dir, days
}

// parseTLSFlags parses; -h prints the flags and exits 0.
func parseTLSFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}

func validity(days, def int) time.Duration {
	if days <= 0 {
		days = def
	}
	return time.Duration(days) * 24 * time.Hour
}

func tlsCA(args []string, stdout, stderr io.Writer) int {
	fs, dir, days := tlsFlags("herald tls ca create", stdout, stderr)
	name := fs.String("name", "herald cluster CA", "the CA's common name")
	if code, ok := parseTLSFlags(fs, args); !ok {
		return code
	}
	ca, err := peerauth.NewCA(*name, validity(*days, 5*365))
	if err != nil {
		fmt.Fprintf(stderr, "herald tls ca create: %v\n", err)
		return 1
	}
	cert, key := filepath.Join(*dir, "herald-ca.pem"), filepath.Join(*dir, "herald-ca-key.pem")
	if err := writeNew(cert, ca.Cert, key, ca.Key); err != nil {
		fmt.Fprintf(stderr, "herald tls ca create: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "==> CA certificate %s\n==> CA key %s (needed only to make node certificates: keep it off the nodes)\n", cert, key)
	return 0
}

func tlsCert(args []string, stdout, stderr io.Writer) int {
	fs, dir, days := tlsFlags("herald tls cert create", stdout, stderr)
	node := fs.String("node", "", "the node's name (the certificate's common name, checked by peers' allow-lists)")
	caFile := fs.String("ca", "herald-ca.pem", "the CA certificate")
	caKey := fs.String("ca-key", "herald-ca-key.pem", "the CA key")
	var hosts stringList
	fs.Var(&hosts, "host", "a host name or IP address the node is reached by (repeatable); localhost and 127.0.0.1 are always added")
	if code, ok := parseTLSFlags(fs, args); !ok {
		return code
	}
	if *node == "" || strings.ContainsAny(*node, `/\`) {
		fmt.Fprintln(stderr, "herald tls cert create: -node NAME is required (a name without slashes)")
		return 2
	}
	cp, err := os.ReadFile(*caFile)
	if err == nil {
		var kp []byte
		if kp, err = os.ReadFile(*caKey); err == nil {
			hs := append([]string{"localhost", "127.0.0.1"}, hosts...)
			var pair peerauth.PEMPair
			if pair, err = peerauth.NewNodeCert(peerauth.PEMPair{Cert: cp, Key: kp}, *node, hs, validity(*days, 365)); err == nil {
				cert, key := filepath.Join(*dir, *node+".pem"), filepath.Join(*dir, *node+"-key.pem")
				if err = writeNew(cert, pair.Cert, key, pair.Key); err == nil {
					fmt.Fprintf(stdout, "==> certificate %s\n==> key %s\n", cert, key)
					return 0
				}
			}
		}
	}
	fmt.Fprintf(stderr, "herald tls cert create: %v\n", err)
	return 1
}

func tlsSecret(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald tls secret create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "file to write the secret to (default: print it)")
	if code, ok := parseTLSFlags(fs, args); !ok {
		return code
	}
	s := peerauth.NewSecret()
	if *out == "" {
		fmt.Fprintln(stdout, s)
		return 0
	}
	if err := writeNew(*out, []byte(s+"\n")); err != nil {
		fmt.Fprintf(stderr, "herald tls secret create: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "==> cluster secret %s\n", *out)
	return 0
}

// writeNew writes path/data pairs with mode 0600, refusing to overwrite any existing file.
func writeNew(pairs ...any) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if _, err := os.Stat(pairs[i].(string)); err == nil {
			return fmt.Errorf("%s exists; not overwriting it", pairs[i])
		}
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		f, err := os.OpenFile(pairs[i].(string), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, werr := f.Write(pairs[i+1].([]byte))
		if err := errors.Join(werr, f.Close()); err != nil {
			return err
		}
	}
	return nil
}
