package main

import (
	"io"
	"log/slog"
	"regexp"
	"strings"
)

// newLogger returns the service's JSON logger. Its ReplaceAttr is a backstop
// behind the typed wrappers (ivr.NationalID, ciba.AuthRequest, …): values of
// keys that name secrets are dropped, and any standalone run of 10 to 12 digits — the
// shape of a national identity number — is masked wherever it appears.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: redactAttr}))
}

var idLike = regexp.MustCompile(`\b\d{10,12}\b`)

var secretKeys = map[string]bool{
	"digits": true, "ssn": true, "socialno": true, "national_id": true, "login_hint": true,
	"password": true, "token": true, "id_token": true, "access_token": true, "client_assertion": true,
	"auth_req_id": true, "secret": true, "authorization": true, "cookie": true,
}

func redactAttr(_ []string, a slog.Attr) slog.Attr {
	if secretKeys[strings.ToLower(a.Key)] {
		return slog.String(a.Key, "[redacted]")
	}
	var s string
	switch a.Value.Kind() {
	case slog.KindString:
		s = a.Value.String()
	case slog.KindAny:
		err, ok := a.Value.Any().(error)
		if !ok {
			return a
		}
		s = err.Error()
		a = slog.String(a.Key, s)
	default:
		return a
	}
	if idLike.MatchString(s) {
		return slog.String(a.Key, idLike.ReplaceAllStringFunc(s, func(d string) string {
			return strings.Repeat("*", len(d)-2) + d[len(d)-2:]
		}))
	}
	return a
}
