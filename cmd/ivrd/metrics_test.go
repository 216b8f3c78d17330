package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/sqlite"
	"github.com/ivr/callerverify/ivr"
)

// TestWebhookMetricLabelsAreTheRoutes: every route the IVR serves gets a
// label of its own, its pattern, so labels cannot drift from the routes.
func TestWebhookMetricLabelsAreTheRoutes(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ivr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, err := ivr.NewService(ivr.Config{
		PublicURL: "https://ivr.example.com", TwilioAuthToken: "token", AccountSID: "AC0123456789abcdef0123456789abcdef",
		HashKey: []byte("0123456789abcdef"), Profile: ciba.Generic, Mode: ivr.ModePing,
	}, db, &lazyBroker{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics()
	r := chi.NewRouter()
	r.Group(func(r chi.Router) {
		r.Use(m.instrument)
		svc.Mount(r)
	})
	var routes []string
	if err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, route)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(routes) < 10 {
		t.Fatalf("routes %v: want the nine webhooks and the notification endpoint", routes)
	}
	for _, route := range routes {
		// Unsigned: refused, and still counted under the route.
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, route+"?s=1", strings.NewReader("")))
	}
	w := httptest.NewRecorder()
	m.handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(w.Body)
	for _, route := range routes {
		if !strings.Contains(string(body), `ivr_webhook_duration_seconds_count{code="4xx",route="`+route+`"} 1`) {
			t.Errorf("no webhook metric labelled %s", route)
		}
	}
	if strings.Contains(string(body), `route="other"`) {
		t.Error("a served route was counted as other")
	}
}
