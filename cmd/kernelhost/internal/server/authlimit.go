package server

import (
	"container/list"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
)

// Failed authentication is limited per client address, so that nobody
// tries tokens at the server's full speed (each try is a store read and a
// log line; tokens are 256 random bits, so the limit is about cost and
// noise, and about any token that leaked in part):
//
//   - Every failed authentication of a presented token spends one of its
//     address's tries: AuthFailures of them, refilled evenly over
//     AuthFailureWindow (a GCRA, in integer nanoseconds). Successes spend
//     nothing, so any number of good tokens at once (a host running many
//     agents) never meets the limit.
//   - An address without tries left is answered 429 QUOTA_EXCEEDED with
//     Retry-After, before any lookup, for every token it has not proven:
//     a token that authenticated from that address (the last
//     goodTokensPerAddr of them are remembered, as sha256 hashes) is
//     never refused, so a client that works keeps working while something
//     else at its address (a NAT, a proxy) fails. Requests in flight when
//     the tries run out still fail as 401: an address gets at most its
//     tries plus its concurrency.
//   - Requests without a token are not counted: they cost no lookup.
//   - The table of addresses holds at most MaxAuthAddresses; the least
//     recently seen goes first. IPv6 addresses count by their /64, which
//     one host commonly holds whole.
//
// The address is the connection's (RemoteAddr): behind a reverse proxy
// every client shares the proxy's.

// Defaults of the failed-authentication limit (Config).
const (
	DefaultAuthFailures      = 20
	DefaultAuthFailureWindow = time.Minute
	DefaultMaxAuthAddresses  = 10000
)

// goodTokensPerAddr is how many proven tokens an address keeps.
const goodTokensPerAddr = 4

// authLimiter is the per-address table. It is safe for concurrent use.
type authLimiter struct {
	now      func() time.Time
	interval int64 // ns between two refilled tries: window / burst
	slack    int64 // ns of tries that may be taken ahead: (burst - 1) * interval
	max      int

	mu    sync.Mutex
	addrs map[string]*list.Element // of *addrState
	lru   list.List                // front: most recently seen
}

// addrState is one address's budget and proven tokens.
type addrState struct {
	key  string
	tat  int64 // GCRA's theoretical arrival time, Unix ns
	good [goodTokensPerAddr][32]byte
	n    int // good tokens held
}

func newAuthLimiter(now func() time.Time, burst int, window time.Duration, max int) *authLimiter {
	interval := int64(window) / int64(burst)
	return &authLimiter{now: now, interval: interval, slack: int64(burst-1) * interval, max: max, addrs: make(map[string]*list.Element)}
}

// state returns key's entry, creating it (evicting the least recently
// seen past max) and moving it to the front. Caller holds mu.
func (l *authLimiter) state(key string) *addrState {
	if e, ok := l.addrs[key]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*addrState)
	}
	for len(l.addrs) >= l.max {
		old := l.lru.Back()
		delete(l.addrs, old.Value.(*addrState).key)
		l.lru.Remove(old)
	}
	st := &addrState{key: key}
	l.addrs[key] = l.lru.PushFront(st)
	return st
}

func (st *addrState) proven(h [32]byte) bool {
	for i := range st.n {
		if st.good[i] == h {
			return true
		}
	}
	return false
}

// prove remembers h, the oldest proven token making room.
func (st *addrState) prove(h [32]byte) {
	if st.proven(h) {
		return
	}
	if st.n < goodTokensPerAddr {
		st.n++
	}
	copy(st.good[1:st.n], st.good[:st.n-1])
	st.good[0] = h
}

// disprove forgets h (a proven token that stopped working: revoked).
func (st *addrState) disprove(h [32]byte) {
	for i := range st.n {
		if st.good[i] == h {
			copy(st.good[i:st.n-1], st.good[i+1:st.n])
			st.n--
			return
		}
	}
}

// blocked reports whether st has no try left at now, and how long until
// it has one. Caller holds mu.
func (l *authLimiter) blocked(st *addrState, now int64) (time.Duration, bool) {
	if d := max(st.tat, now) - now - l.slack; d > 0 {
		return time.Duration(d), true
	}
	return 0, false
}

// spend takes one try of st at now (a failure). Caller holds mu.
func (l *authLimiter) spend(st *addrState, now int64) {
	st.tat = max(st.tat, now) + l.interval
}

// authNote is what a request carries to identity (noteAuth): its address
// and its token's hash.
type authNote struct {
	l     *authLimiter
	key   string
	hash  [32]byte
	noted bool
}

type authNoteKey struct{}

// admit answers 429 for a request presenting a token its address has not
// proven when the address has no try left, and returns false; else the
// context to serve r in, carrying the note identity reads.
func (l *authLimiter) admit(ctx context.Context, w http.ResponseWriter, r *http.Request) (context.Context, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return ctx, true
	}
	n := &authNote{l: l, key: addrKey(r.RemoteAddr), hash: sha256.Sum256([]byte(h))}
	l.mu.Lock()
	var wait time.Duration
	refused := false
	if e, ok := l.addrs[n.key]; ok {
		st := e.Value.(*addrState)
		if !st.proven(n.hash) {
			wait, refused = l.blocked(st, l.now().UnixNano())
		}
	}
	l.mu.Unlock()
	if refused {
		secs := int64((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		writeError(w, http.StatusTooManyRequests, api.NewError(abi.QuotaExceeded,
			fmt.Sprintf("too many failed authentications from this address: retry in %d s", secs)))
		return nil, false
	}
	return context.WithValue(ctx, authNoteKey{}, n), true
}

// noteAuth tells the limiter whether r's token authenticated: a success
// proves the token for the address; a failure spends one of the
// address's tries (and unproves a proven token: revoked). identity calls
// it once it has looked the token up. Only failures spend: any number of
// requests with good tokens, at once or not, never meet the limit.
func noteAuth(r *http.Request, ok bool) {
	n, _ := r.Context().Value(authNoteKey{}).(*authNote)
	if n == nil || n.noted {
		return
	}
	n.noted = true
	l := n.l
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.state(n.key)
	if ok {
		st.prove(n.hash)
		return
	}
	st.disprove(n.hash)
	l.spend(st, l.now().UnixNano())
}

// addrKey is the limiter's key for a connection from remote (host:port):
// the IPv4 address, or the /64 of an IPv6 one.
func addrKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	switch {
	case ip == nil:
		return host
	case ip.To4() != nil:
		return ip.To4().String()
	default:
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
}

// size is the number of addresses the table holds (tests).
func (l *authLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}
