package main

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version and revision name the build. Release builds set them:
//
//	go build -ldflags "-X main.version=v1.4.0 -X main.revision=$(git rev-parse HEAD)" ./cmd/ivrd
//
// (the Dockerfile does, from its VERSION and REVISION build args). Builds
// from a git checkout without them report the module version and the
// commit that the go command stamps.
var (
	version  string
	revision string
)

// buildInfo is what `ivrd version`, the start-up log and the
// ivr_build_info metric say about the binary.
type buildInfo struct {
	Version   string
	Revision  string // the commit, "" when unknown
	Modified  bool   // built from a checkout with uncommitted changes
	GoVersion string
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Revision: revision, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && b.Revision == "":
				b.Revision = s.Value
			case s.Key == "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	b.Version = cmp.Or(b.Version, "devel")
	return b
}

func (b buildInfo) String() string {
	s := "ivrd " + b.Version
	if b.Revision != "" {
		rev := b.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		s += " (commit " + rev
		if b.Modified {
			s += ", modified"
		}
		s += ")"
	}
	return fmt.Sprintf("%s %s", s, b.GoVersion)
}
