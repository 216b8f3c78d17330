package ciba

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

func pending(desc string) reply {
	return reply{400, nil, `{"error":"authorization_pending","error_description":"` + desc + `"}`}
}

func errReply(status int, code string) reply {
	return reply{status, nil, `{"error":"` + code + `"}`}
}

func (f *fakeBroker) tokenReply(t *testing.T) reply {
	tok := signToken(t, f.key, jwa.RS256(), f.goodClaims(time.Now()), nil)
	return reply{200, nil, `{"token_type":"Bearer","expires_in":"120","id_token":"` + tok + `","access_token":"cf1ce646"}`}
}

// pollGaps returns the time between the start and each token request.
func (f *fakeBroker) pollOffsets(start time.Time) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for _, at := range f.tokenTimes {
		out = append(out, at.Sub(start))
	}
	return out
}

func secs(ns ...int) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n) * time.Second
	}
	return out
}

func TestPoll(t *testing.T) {
	tests := []struct {
		name        string
		interval    time.Duration
		expiresIn   time.Duration
		replies     func(f *fakeBroker, t *testing.T) []reply
		wantErr     []error // all must match; nil = success
		wantOffsets []time.Duration
		wantPending []string
	}{
		{
			name: "pending then approve at the broker's interval", interval: 3 * time.Second, expiresIn: 120 * time.Second,
			replies: func(f *fakeBroker, t *testing.T) []reply {
				return []reply{pending("awaiting first user interaction"), pending("awaiting user identification"), f.tokenReply(t)}
			},
			wantOffsets: secs(3, 6, 9),
			wantPending: []string{"awaiting first user interaction", "awaiting user identification"},
		},
		{
			name: "default interval is 5 s", expiresIn: 120 * time.Second,
			replies:     func(f *fakeBroker, t *testing.T) []reply { return []reply{pending(""), f.tokenReply(t)} },
			wantOffsets: secs(5, 10), wantPending: []string{""},
		},
		{
			name: "slow_down, pending, ok at 5 s takes 25 s", expiresIn: 120 * time.Second,
			replies: func(f *fakeBroker, t *testing.T) []reply {
				return []reply{errReply(400, "slow_down"), pending(""), f.tokenReply(t)}
			},
			wantOffsets: secs(5, 15, 25), wantPending: []string{""},
		},
		{
			name: "every slow_down adds 5 s for good", interval: 2 * time.Second, expiresIn: 120 * time.Second,
			replies: func(f *fakeBroker, t *testing.T) []reply {
				return []reply{errReply(400, "slow_down"), errReply(400, "slow_down"), pending(""), pending(""), f.tokenReply(t)}
			},
			wantOffsets: secs(2, 9, 21, 33, 45), wantPending: []string{"", ""},
		},
		{
			name: "Retry-After longer than the interval is honoured", interval: 2 * time.Second, expiresIn: 120 * time.Second,
			replies: func(f *fakeBroker, t *testing.T) []reply {
				return []reply{{429, http.Header{"Retry-After": {"30"}}, `{"error":"slow_down"}`}, pending(""), f.tokenReply(t)}
			},
			wantOffsets: secs(2, 32, 39), wantPending: []string{""},
		},
		{
			name: "decline (403 like 400)", interval: 2 * time.Second, expiresIn: 120 * time.Second,
			replies:     func(*fakeBroker, *testing.T) []reply { return []reply{pending(""), errReply(403, "access_denied")} },
			wantErr:     []error{ErrAccessDenied},
			wantOffsets: secs(2, 4), wantPending: []string{""},
		},
		{
			name: "expired_token from the broker", interval: 2 * time.Second, expiresIn: 120 * time.Second,
			replies:     func(*fakeBroker, *testing.T) []reply { return []reply{errReply(400, "expired_token")} },
			wantErr:     []error{ErrExpired, ErrExpiredToken},
			wantOffsets: secs(2),
		},
		{
			name: "silent expiry stops at the deadline", interval: 4 * time.Second, expiresIn: 10 * time.Second,
			replies:     func(*fakeBroker, *testing.T) []reply { return []reply{pending("")} },
			wantErr:     []error{ErrExpired},
			wantOffsets: secs(4, 8), wantPending: []string{"", ""},
		},
		{
			name: "invalid_grant ends polling", interval: 2 * time.Second, expiresIn: 120 * time.Second,
			replies:     func(*fakeBroker, *testing.T) []reply { return []reply{errReply(400, "invalid_grant")} },
			wantErr:     []error{ErrInvalidGrant},
			wantOffsets: secs(2),
		},
		{
			name: "a broker hiccup is ridden out", interval: 2 * time.Second, expiresIn: 120 * time.Second,
			replies: func(f *fakeBroker, t *testing.T) []reply {
				return []reply{{503, nil, "down"}, {502, nil, "<html>"}, f.tokenReply(t)}
			},
			wantOffsets: secs(2, 4, 6),
		},
		{
			name: "a broker that stays down ends polling", interval: 2 * time.Second, expiresIn: 120 * time.Second,
			replies:     func(*fakeBroker, *testing.T) []reply { return []reply{{503, nil, "down"}} },
			wantErr:     []error{ErrTransport},
			wantOffsets: secs(2, 4, 6),
		},
		{
			name: "a bad ID token ends polling", interval: 2 * time.Second, expiresIn: 120 * time.Second,
			replies: func(f *fakeBroker, t *testing.T) []reply {
				c := f.goodClaims(time.Now())
				c["aud"] = "other"
				return []reply{{200, nil, `{"id_token":"` + signToken(t, f.key, jwa.RS256(), c, nil) + `"}`}}
			},
			wantErr:     []error{ErrInvalidIDToken},
			wantOffsets: secs(2),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeBroker(t)
				c := newTestClient(t, f, nil)
				f.queueToken(tt.replies(f, t)...)
				start := time.Now()
				ar := &AuthResponse{AuthReqID: "req-1", Interval: tt.interval, ExpiresIn: tt.expiresIn, ExpiresAt: start.Add(tt.expiresIn)}
				var got []string
				tok, err := c.Poll(t.Context(), ar, func(d string) { got = append(got, d) })
				if tt.wantErr == nil {
					if err != nil {
						t.Fatalf("Poll: %v", err)
					}
					if tok.IDToken == nil || tok.IDToken.Subject != "{bb9c2364-dfae-44f3-bcfd-999053d94f9e}" || tok.ExpiresIn != 120*time.Second {
						t.Errorf("token = %v ID token %v", tok, tok.IDToken)
					}
				}
				for _, want := range tt.wantErr {
					if !errors.Is(err, want) {
						t.Errorf("err = %v, want it to match %v", err, want)
					}
				}
				if offs := f.pollOffsets(start); !slices.Equal(offs, tt.wantOffsets) {
					t.Errorf("polls at %v, want %v", offs, tt.wantOffsets)
				}
				if !slices.Equal(got, tt.wantPending) {
					t.Errorf("onPending got %q, want %q", got, tt.wantPending)
				}
				if tt.name == "silent expiry stops at the deadline" && time.Since(start) != tt.expiresIn {
					t.Errorf("Poll returned after %s, want %s", time.Since(start), tt.expiresIn)
				}
			})
		})
	}
}

func TestPollStopsWhenContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeBroker(t)
		c := newTestClient(t, f, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 7*time.Second)
		defer cancel()
		_, err := c.Poll(ctx, &AuthResponse{AuthReqID: "req-1", ExpiresIn: time.Minute}, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if n := len(f.pollOffsets(time.Now())); n != 1 {
			t.Errorf("%d polls, want 1", n)
		}
	})
}

func TestNoTwoTokenRequestsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeBroker(t)
		c := newTestClient(t, f, nil)
		// A slow broker: every token request takes a second.
		var mu sync.Mutex
		inflight := map[string]int{}
		maxPerID, maxAll, all := 0, 0, 0
		slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			id := r.PostForm.Get("auth_req_id")
			mu.Lock()
			inflight[id]++
			all++
			maxPerID, maxAll = max(maxPerID, inflight[id]), max(maxAll, all)
			mu.Unlock()
			time.Sleep(time.Second)
			mu.Lock()
			inflight[id]--
			all--
			mu.Unlock()
			f.ServeHTTP(w, r)
		})
		c.hc = &http.Client{Transport: handlerTransport{slow}}
		start := time.Now()
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { _, _ = c.Token(t.Context(), "req-1") })
		}
		wg.Go(func() { _, _ = c.Token(t.Context(), "req-2") })
		wg.Wait()
		if n := len(f.pollOffsets(start)); n != 5 {
			t.Fatalf("%d token requests, want 5", n)
		}
		if maxPerID != 1 {
			t.Errorf("%d requests in flight for one auth_req_id, want 1", maxPerID)
		}
		if maxAll != 2 {
			t.Errorf("%d requests in flight in all, want 2 (different ids run side by side)", maxAll)
		}
		// req-1 is serialised (4 × 1 s), req-2 runs alongside.
		if d := time.Since(start); d != 4*time.Second {
			t.Errorf("took %s, want 4s", d)
		}
	})
}
