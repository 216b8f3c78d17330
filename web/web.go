// Package web holds the static files of the agent dashboard and the demo
// pages, embedded in the binary. It has no logic.
package web

import "embed"

// FS holds the files under static/ (paths start with "static/").
//
//go:embed static
var FS embed.FS
