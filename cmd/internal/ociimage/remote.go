package ociimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Options are the settings every registry operation takes.
type Options struct {
	// Insecure allows plain HTTP to any registry. Without it only loopback
	// registries are spoken to over HTTP.
	Insecure bool
	// Keychain finds credentials; nil is authn.DefaultKeychain (the Docker
	// config, $DOCKER_CONFIG/config.json and its credential helpers).
	Keychain authn.Keychain
	// System is the Nix system of the disk ("x86_64-linux" when empty); it
	// picks the image out of a multi-architecture index and is recorded in
	// pushed images.
	System string
	// Progress, when not nil, gets a progress bar for downloads and
	// uploads (give it a terminal only).
	Progress io.Writer
	// Transport is the HTTP transport under the checks of this package;
	// nil is http.DefaultTransport.
	Transport http.RoundTripper
	Logger    *slog.Logger // nil: discard
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o Options) system() string {
	if o.System == "" {
		return "x86_64-linux"
	}
	return o.System
}

// platform maps a Nix system to the OCI platform of its images.
func platform(system string) (v1.Platform, error) {
	switch system {
	case "x86_64-linux":
		return v1.Platform{OS: "linux", Architecture: "amd64"}, nil
	case "aarch64-linux":
		return v1.Platform{OS: "linux", Architecture: "arm64"}, nil
	}
	return v1.Platform{}, fmt.Errorf("system %q has no OCI platform (want x86_64-linux or aarch64-linux)", system)
}

// parseRef parses an image reference. With insecure, HTTP is allowed for
// its registry (go-containerregistry then tries HTTPS first, then HTTP).
func parseRef(ref string, insecure bool) (name.Reference, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("parsing image reference %q: %w", ref, err)
	}
	return r, nil
}

// remoteOptions are the go-containerregistry options for one operation.
func (o Options) remoteOptions(ctx context.Context) []remote.Option {
	keychain := o.Keychain
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	base := o.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(keychain),
		remote.WithTransport(httpGuard{base: base, insecure: o.Insecure}),
		remote.WithUserAgent("distrotest"),
	}
}

// httpGuard refuses plain-HTTP requests to registries that are not on a
// loopback address unless insecure is set. go-containerregistry falls back
// to HTTP for RFC 1918 and .local names by itself; this keeps that fallback
// to the machine the tests run on.
type httpGuard struct {
	base     http.RoundTripper
	insecure bool
}

func (g httpGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.insecure && !isLoopback(req.URL.Hostname()) {
		return nil, fmt.Errorf("refusing plain HTTP to %s: only loopback registries are spoken to without TLS (pass --insecure to allow it)", req.URL.Host)
	}
	return g.base.RoundTrip(req)
}

// isLoopback reports whether host (no port) names this machine.
func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrNotFound is wrapped by errors for a manifest, tag or repository the
// registry does not have.
var ErrNotFound = errors.New("not found in the registry")

// explain turns registry errors into messages that say what to do. ref is
// the reference the operation was about.
func explain(ref name.Reference, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode:
				if _, ok := ref.(name.Digest); ok {
					return fmt.Errorf("%s: the registry has no manifest with digest %s in %s (wrong digest, or the image was deleted): %w", ref, ref.Identifier(), ref.Context(), errors.Join(ErrNotFound, err))
				}
				return fmt.Errorf("%s: the registry has no tag %q in %s: %w", ref, ref.Identifier(), ref.Context(), errors.Join(ErrNotFound, err))
			case transport.NameUnknownErrorCode:
				return fmt.Errorf("%s: the registry has no repository %s: %w", ref, ref.Context().RepositoryStr(), errors.Join(ErrNotFound, err))
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("%s: access denied: log in with 'docker login %s' (credentials are read from the Docker config): %w", ref, ref.Context().RegistryStr(), err)
			}
		}
		if te.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%s: %w", ref, errors.Join(ErrNotFound, err))
		}
		return fmt.Errorf("%s: %w", ref, err)
	}
	if strings.Contains(err.Error(), "error verifying sha256 checksum") || strings.Contains(err.Error(), "digest mismatch") {
		return fmt.Errorf("%s: digest verification failed: the registry sent other bytes than the digest names: %w", ref, err)
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return fmt.Errorf("%s: registry %s is unreachable: %w", ref, ref.Context().RegistryStr(), err)
	}
	return fmt.Errorf("%s: %w", ref, err)
}
