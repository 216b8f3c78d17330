package ciba

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDecodeAuthResponse(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    AuthResponse
		wantErr bool
	}{
		{"Idura SE", `{"auth_req_id":"3857f8ff-21b9-48ae-a732-a3bd8128a7ae","expires_in":120,"interval":3}`, AuthResponse{AuthReqID: "3857f8ff-21b9-48ae-a732-a3bd8128a7ae", ExpiresIn: 120 * time.Second, Interval: 3 * time.Second}, false},
		{"Idura NO word pair", `{"auth_req_id":"a","expires_in":900,"interval":3,"bindingMessage":"Frekk Julekos"}`, AuthResponse{AuthReqID: "a", ExpiresIn: 900 * time.Second, Interval: 3 * time.Second, BindingMessage: "Frekk Julekos"}, false},
		{"numbers as strings", `{"auth_req_id":"a","expires_in":" 120 ","interval":"5"}`, AuthResponse{AuthReqID: "a", ExpiresIn: 120 * time.Second, Interval: 5 * time.Second}, false},
		{"no interval, unknown fields", `{"auth_req_id":"a","expires_in":300,"foo":[1,{"b":null}]}`, AuthResponse{AuthReqID: "a", ExpiresIn: 300 * time.Second}, false},
		{"null interval", `{"auth_req_id":"a","expires_in":300,"interval":null}`, AuthResponse{AuthReqID: "a", ExpiresIn: 300 * time.Second}, false},
		{"missing auth_req_id", `{"expires_in":120}`, AuthResponse{}, true},
		{"missing expires_in", `{"auth_req_id":"a"}`, AuthResponse{}, true},
		{"negative expires_in", `{"auth_req_id":"a","expires_in":-1}`, AuthResponse{}, true},
		{"huge interval", `{"auth_req_id":"a","expires_in":1,"interval":1e300}`, AuthResponse{}, true},
		{"word expires_in", `{"auth_req_id":"a","expires_in":"soon"}`, AuthResponse{}, true},
		{"auth_req_id with a space", `{"auth_req_id":"a b","expires_in":1}`, AuthResponse{}, true},
		{"not an object", `[]`, AuthResponse{}, true},
		{"html", `<html>`, AuthResponse{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeAuthResponse([]byte(tt.body))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				if strings.Contains(err.Error(), tt.body) && len(tt.body) > 3 {
					t.Errorf("error quotes the body: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *got != tt.want {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestDecodeTokenResponse(t *testing.T) {
	got, err := decodeTokenResponse([]byte(`{"token_type":"Bearer","expires_in":"120","id_token":"x.y.z","access_token":"cf1ce646","scope":"openid","extra":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.RawIDToken != "x.y.z" || got.AccessToken != "cf1ce646" || got.ExpiresIn != 120*time.Second || got.TokenType != "Bearer" || got.Scope != "openid" {
		t.Errorf("got %+v", got)
	}
	for _, bad := range []string{`{}`, `{"access_token":1}`, `{"id_token":"a","expires_in":"x"}`, `nope`} {
		if _, err := decodeTokenResponse([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func FuzzDecodeAuthResponse(f *testing.F) {
	for _, s := range []string{
		`{"auth_req_id":"3857f8ff","expires_in":120,"interval":3}`,
		`{"auth_req_id":"a","expires_in":"900","interval":"3","bindingMessage":"Frekk Julekos"}`,
		`{"auth_req_id":"a","expires_in":1e9}`, `{"expires_in":null}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ar, err := decodeAuthResponse(body)
		if err != nil {
			if ar != nil {
				t.Fatal("response with an error")
			}
			return
		}
		if ar.AuthReqID == "" || !printable(ar.AuthReqID) {
			t.Fatalf("bad auth_req_id accepted")
		}
		if ar.ExpiresIn <= 0 || ar.ExpiresIn > maxSeconds*time.Second || ar.Interval < 0 || ar.Interval > maxSeconds*time.Second {
			t.Fatalf("durations out of range: %s %s", ar.ExpiresIn, ar.Interval)
		}
		if ar.PollInterval() <= 0 {
			t.Fatal("non-positive poll interval")
		}
	})
}

func FuzzDecodeTokenResponse(f *testing.F) {
	for _, s := range []string{
		`{"token_type":"Bearer","expires_in":"120","id_token":"a.b.c","access_token":"x"}`,
		`{"id_token":"a.b.c","expires_in":86400}`, `{"access_token":""}`, `{`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tr, err := decodeTokenResponse(body)
		if err != nil {
			return
		}
		if tr.RawIDToken == "" && tr.AccessToken == "" {
			t.Fatal("token response without tokens accepted")
		}
		if tr.ExpiresIn < 0 || tr.ExpiresIn > maxSeconds*time.Second {
			t.Fatalf("expires_in out of range: %s", tr.ExpiresIn)
		}
	})
}

// FuzzValidateIDToken checks that no input makes validation panic or
// accept a token not signed by the broker.
func FuzzValidateIDToken(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.e30.AAAA")
	fb := newFakeBroker(f)
	c := &Client{cfg: Config{ClientID: "ivr", Skew: DefaultSkew}, meta: Metadata{Issuer: fb.issuer}, now: time.Now,
		hc: fb.httpClient(), jwks: jwksCache{uri: fb.issuer + "/.well-known/jwks"}}
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := c.ValidateIDToken(t.Context(), raw); err == nil {
			t.Fatal("accepted a token not signed by the broker")
		}
	})
}

func TestPingHandler(t *testing.T) {
	var got []string
	h := NewPingHandler("s3cret-token", func(id string) { got = append(got, id) })
	tests := []struct {
		name   string
		method string
		auth   string
		body   string
		want   int
	}{
		{"ok", "POST", "Bearer s3cret-token", `{"auth_req_id":"req-1"}`, http.StatusNoContent},
		{"bearer is case-insensitive", "POST", "bearer s3cret-token", `{"auth_req_id":"req-2"}`, http.StatusNoContent},
		{"wrong token", "POST", "Bearer nope", `{"auth_req_id":"req-3"}`, http.StatusUnauthorized},
		{"no token", "POST", "", `{"auth_req_id":"req-4"}`, http.StatusUnauthorized},
		{"basic auth", "POST", "Basic czNjcmV0LXRva2Vu", `{"auth_req_id":"req-5"}`, http.StatusUnauthorized},
		{"bad JSON", "POST", "Bearer s3cret-token", `{"auth_req_id":`, http.StatusBadRequest},
		{"no auth_req_id", "POST", "Bearer s3cret-token", `{}`, http.StatusBadRequest},
		{"auth_req_id not a string", "POST", "Bearer s3cret-token", `{"auth_req_id":5}`, http.StatusBadRequest},
		{"GET", "GET", "Bearer s3cret-token", ``, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/ciba/notify", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/json")
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("status %d, want %d", w.Code, tt.want)
			}
		})
	}
	if strings.Join(got, ",") != "req-1,req-2" {
		t.Errorf("ready called with %q, want req-1, req-2", got)
	}
	// An empty configured token never authorises anything.
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"auth_req_id":"x"}`))
	r.Header.Set("Authorization", "Bearer ")
	NewPingHandler("", nil).ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("empty token: status %d", w.Code)
	}
}
