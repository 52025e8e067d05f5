package kernel_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/internal/hammer"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

// badgerWorld is a World on an in-memory Badger store, whose serialisable
// transactions really conflict, with retries enough that no action gives up.
func badgerWorld(t *testing.T) *kerneltest.World {
	return kerneltest.NewWorld(t, func(c *kernel.Config) {
		st, err := store.OpenBadger("", store.BadgerOptions{InMemory: true})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		c.Store = st
		c.MaxConflictRetries = 100_000
	})
}

// TestRightAtomicSettlement: many goroutines race to transfer, split, merge
// and redeem the same rights; exactly the valid operations succeed, no
// amount is created or lost, no right is spent twice. Then a property test
// over random operation sequences checks every result against a model and
// conservation after every step.
// Reference: issue 10, gate 4.
func TestRightAtomicSettlement(t *testing.T) {
	t.Run("one right, many spenders", testRightRace)
	t.Run("hammer", testRightHammer)
	t.Run("property", testRightProperty)
}

// testRightRace: in each round, goroutines try at once to redeem, transfer,
// split and merge away one fresh right. Every one of these uses up the
// holder's claim, so exactly one succeeds.
func testRightRace(t *testing.T) {
	w := badgerWorld(t)
	const spenders = 16
	w.Principal(t, "alice", 0)
	for i := 0; i < spenders; i++ {
		w.Principal(t, fmt.Sprintf("p%d", i), 0)
	}
	for i := 0; i < 4; i++ {
		requireCode(t, abi.OK, w.Do(mintRight("alice", fmt.Sprintf("sink%d", i), kernel.LLMRate, 1)))
	}
	tot := totals(t, w)
	rounds := 20
	if testing.Short() {
		rounds = 4
	}
	for round := 0; round < rounds; round++ {
		id := fmt.Sprintf("r%d", round)
		requireCode(t, abi.OK, w.Do(mintRight("alice", id, kernel.LLMRate, 10)))
		actions := make([]kernel.Action, spenders)
		for i := range actions {
			switch i % 4 {
			case 0:
				actions[i] = redeemRight("alice", id)
			case 1:
				actions[i] = transferRight("alice", id, fmt.Sprintf("p%d", i))
			case 2:
				actions[i] = splitRight("alice", id, []int64{int64(1 + i%9), int64(9 - i%9)}, fmt.Sprintf("%s-%da", id, i), fmt.Sprintf("%s-%db", id, i))
			case 3:
				actions[i] = mergeRights("alice", fmt.Sprintf("sink%d", i/4), id)
			}
		}
		results := make([]kernel.Result, spenders)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range actions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i] = w.Do(actions[i])
			}()
		}
		close(start)
		wg.Wait()
		won := 0
		for i, res := range results {
			switch res.Code {
			case abi.OK:
				won++
			case abi.PermissionDenied, abi.NotFound:
			default:
				t.Fatalf("round %d: %s: unexpected %s: %s", round, actions[i].Kind, res.ErrorCode, res.Message)
			}
		}
		require.Equal(t, 1, won, "round %d: exactly one spend of %s succeeds", round, id)
		require.Equal(t, tot, totals(t, w), "round %d", round)
	}
	requireRightsSound(t, w)
}

// hammerLog collects what the hammer's goroutines observed.
type hammerLog struct {
	// mu guards everything below; every hammer goroutine takes it.
	mu      sync.Mutex
	ids     []string       // every right id that ever existed
	created map[string]int // successes that created the id
	spent   map[string]int // successes that used the id up
	ok      map[kernel.Kind]int
}

func (l *hammerLog) pick(r *rand.Rand) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ids[r.IntN(len(l.ids))]
}

func (l *hammerLog) record(a kernel.Action, res kernel.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ok[a.Kind]++
	switch a.Kind {
	case kernel.KindMintRight:
		l.created[a.Target]++
		l.ids = append(l.ids, a.Target)
	case kernel.KindSplitRight:
		l.spent[a.Target]++
		for _, id := range res.IDs {
			l.created[id]++
			l.ids = append(l.ids, id)
		}
	case kernel.KindMergeRights:
		for _, id := range a.IDs {
			l.spent[id]++
		}
	case kernel.KindRedeemRight:
		l.spent[a.Target]++
	}
}

// testRightHammer: random primitives from many goroutines on a shared pool
// of rights, chosen from stale reads. Afterwards: no right was created or
// spent twice, every principal's quota moved by exactly the mints and
// redeems that succeeded, the index agrees with the rights, and totals are
// conserved.
func testRightHammer(t *testing.T) {
	w := badgerWorld(t)
	const n = 4
	resources := []kernel.Resource{kernel.LLMRate, kernel.LLMBudget, kernel.Disk, kernel.Memory}
	principals := make([]string, n)
	log := &hammerLog{created: map[string]int{}, spent: map[string]int{}, ok: map[kernel.Kind]int{}}
	for i := range principals {
		p := fmt.Sprintf("p%d", i)
		principals[i] = p
		w.Principal(t, p, 0)
		require.NoError(t, w.K.SetQuota(ctx, p, kernel.LLMBudget, 10_000))
		for j, res := range resources {
			id := fmt.Sprintf("seed-%d-%d", i, j)
			a := mintRight(p, id, res, 500)
			res := w.Do(a)
			requireCode(t, abi.OK, res)
			log.record(a, res)
		}
	}
	initial := map[string][]kernel.QuotaStatus{}
	for _, p := range principals {
		qs, err := w.K.Quotas(ctx, p)
		require.NoError(t, err)
		initial[p] = qs
	}
	evs, err := w.K.Events(ctx, 0, 0)
	require.NoError(t, err)
	since := evs[len(evs)-1].Seq
	tot := totals(t, w)

	hammer.Run(t, 8, 150, func(g, i int) {
		r := rand.New(rand.NewPCG(uint64(g), uint64(i)))
		id := log.pick(r)
		// A stale read of the right: the race is between this and the act.
		read := w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "p0", Target: id})
		var rc struct {
			Resource string
			Amount   int64
			Holder   string
		}
		if read.OK {
			if err := json.Unmarshal(read.Content, &rc); err != nil {
				t.Errorf("right %s: %v", id, err)
				return
			}
		} else {
			rc.Holder, rc.Amount = principals[r.IntN(n)], 2
		}
		caller := rc.Holder
		if r.IntN(5) == 0 {
			caller = principals[r.IntN(n)]
		}
		var a kernel.Action
		switch k := r.IntN(10); {
		case k < 1:
			a = mintRight(caller, fmt.Sprintf("m-%d-%d", g, i), resources[r.IntN(len(resources))], int64(1+r.IntN(50)))
		case k < 4:
			to := principals[r.IntN(n)]
			if to == caller {
				return
			}
			a = transferRight(caller, id, to)
		case k < 6:
			if rc.Amount < 2 {
				return
			}
			cut := 1 + r.Int64N(rc.Amount-1)
			a = splitRight(caller, id, []int64{cut, rc.Amount - cut})
		case k < 9:
			other := log.pick(r)
			if other == id {
				return
			}
			a = mergeRights(caller, id, other)
		default:
			a = redeemRight(caller, id)
		}
		res := w.Do(a)
		switch res.Code {
		case abi.OK:
			log.record(a, res)
		case abi.PermissionDenied, abi.NotFound, abi.QuotaExceeded:
		case abi.InvalidArgument:
			// A stale amount for a split, or rights of two resources.
			if a.Kind != kernel.KindSplitRight && a.Kind != kernel.KindMergeRights {
				t.Errorf("%s: unexpected INVALID_ARGUMENT: %s", a.Kind, res.Message)
			}
		default:
			t.Errorf("%s: unexpected %s: %s", a.Kind, res.ErrorCode, res.Message)
		}
	})

	require.Equal(t, tot, totals(t, w), "no amount created or lost")
	requireRightsSound(t, w)
	for id, c := range log.created {
		require.Equal(t, 1, c, "right %s created once", id)
	}
	for id, c := range log.spent {
		require.Equal(t, 1, c, "right %s spent once", id)
	}
	// Quotas moved by exactly the committed mints and redeems, and every
	// success reported to a caller is in the audit log, and nothing else.
	evs, err = w.K.Events(ctx, since, 1<<20)
	require.NoError(t, err)
	delta := map[string]map[string]int64{}
	okEvents := map[kernel.Kind]int{}
	for _, ev := range evs {
		if ev.Code != "OK" || ev.Kind == kernel.KindRead {
			continue
		}
		okEvents[ev.Kind]++
		if delta[ev.Caller] == nil {
			delta[ev.Caller] = map[string]int64{}
		}
		switch ev.Kind {
		case kernel.KindMintRight:
			delta[ev.Caller][ev.Resource] -= ev.Amount
		case kernel.KindRedeemRight:
			delta[ev.Caller][ev.Resource] += ev.Amount
		}
	}
	log.ok[kernel.KindMintRight] -= n * len(resources) // the seeds came before since
	for k, v := range log.ok {
		if v == 0 {
			delete(log.ok, k)
		}
	}
	require.Equal(t, log.ok, okEvents)
	for _, p := range principals {
		qs, err := w.K.Quotas(ctx, p)
		require.NoError(t, err)
		for j, q := range qs {
			require.Equal(t, initial[p][j].Quota+delta[p][string(q.Resource)], q.Quota, "%s %s", p, q.Resource)
		}
	}
	t.Logf("successes: %v; rights now: %d ids seen", okEvents, len(log.ids))
}

// rightModel is the property test's model of the world's rights.
type rightModel struct {
	quota  map[string]map[kernel.Resource]int64
	rights map[string]kernel.Right
}

func (m *rightModel) holderOnly(caller, id string) (kernel.Right, abi.Code) {
	r, ok := m.rights[id]
	if !ok {
		return r, abi.NotFound
	}
	if r.Holder != caller {
		return r, abi.PermissionDenied
	}
	return r, abi.OK
}

// apply predicts a's code and, when it is OK, applies it to the model.
func (m *rightModel) apply(a kernel.Action) abi.Code {
	switch a.Kind {
	case kernel.KindMintRight:
		if _, ok := m.rights[a.Target]; ok {
			return abi.AlreadyExists
		}
		res := kernel.Resource(a.Resource)
		if m.quota[a.Caller][res] < a.Amount {
			return abi.QuotaExceeded
		}
		m.quota[a.Caller][res] -= a.Amount
		m.rights[a.Target] = kernel.Right{ID: a.Target, Resource: res, Amount: a.Amount, Holder: a.Caller, CreatedBy: a.Caller}
	case kernel.KindTransferRight:
		r, code := m.holderOnly(a.Caller, a.Target)
		if code != abi.OK {
			return code
		}
		r.Holder = a.To
		m.rights[a.Target] = r
	case kernel.KindSplitRight:
		r, code := m.holderOnly(a.Caller, a.Target)
		if code != abi.OK {
			return code
		}
		var sum int64
		for _, n := range a.Amounts {
			sum += n
		}
		if sum != r.Amount {
			return abi.InvalidArgument
		}
		ids := a.IDs
		if len(ids) == 0 {
			for i := range a.Amounts {
				ids = append(ids, fmt.Sprintf("%s.%d", a.Target, i+1))
			}
		}
		for _, id := range ids {
			if _, ok := m.rights[id]; ok {
				return abi.AlreadyExists
			}
		}
		delete(m.rights, a.Target)
		for i, id := range ids {
			p := r
			p.ID, p.Amount = id, a.Amounts[i]
			m.rights[id] = p
		}
	case kernel.KindMergeRights:
		r, code := m.holderOnly(a.Caller, a.Target)
		if code != abi.OK {
			return code
		}
		for _, id := range a.IDs {
			p, code := m.holderOnly(a.Caller, id)
			if code != abi.OK {
				return code
			}
			if p.Resource != r.Resource {
				return abi.InvalidArgument
			}
		}
		for _, id := range a.IDs {
			r.Amount += m.rights[id].Amount
			delete(m.rights, id)
		}
		m.rights[a.Target] = r
	case kernel.KindRedeemRight:
		r, code := m.holderOnly(a.Caller, a.Target)
		if code != abi.OK {
			return code
		}
		m.quota[a.Caller][r.Resource] += r.Amount
		delete(m.rights, a.Target)
	}
	return abi.OK
}

// testRightProperty: random sequences of primitives, valid and not, give
// exactly the model's results; after every step the totals are conserved,
// the index agrees, and at the end every principal holds what the model
// says.
func testRightProperty(t *testing.T) {
	seeds, steps := 20, 80
	if testing.Short() {
		seeds = 5
	}
	resources := []kernel.Resource{kernel.LLMRate, kernel.LLMBudget, kernel.Disk, kernel.Memory}
	principals := []string{"a", "b", "c"}
	codes := map[string]int{}
	defer func() { t.Logf("results: %v", codes) }()
	for seed := 0; seed < seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			w := kerneltest.NewWorld(t, func(c *kernel.Config) {
				c.DefaultQuotas = map[kernel.Resource]int64{kernel.LLMRate: 100, kernel.LLMBudget: 100, kernel.Disk: 100, kernel.Memory: 100}
			})
			m := &rightModel{quota: map[string]map[kernel.Resource]int64{}, rights: map[string]kernel.Right{}}
			for _, p := range principals {
				w.Principal(t, p, 0)
				m.quota[p] = map[kernel.Resource]int64{}
				for _, res := range resources {
					m.quota[p][res] = 100
				}
			}
			tot := totals(t, w)
			r := rand.New(rand.NewPCG(uint64(seed), 10))
			// ids draws from known ids and a few that never exist.
			sorted := func() []string {
				return slices.Sorted(func(yield func(string) bool) {
					for id := range m.rights {
						if !yield(id) {
							return
						}
					}
				})
			}
			ids := func() string {
				keys := sorted()
				if len(keys) == 0 || r.IntN(8) == 0 {
					return fmt.Sprintf("ghost%d", r.IntN(3))
				}
				return keys[r.IntN(len(keys))]
			}
			for step := 0; step < steps; step++ {
				caller := principals[r.IntN(len(principals))]
				var a kernel.Action
				switch r.IntN(6) {
				case 0, 1:
					a = mintRight(caller, fmt.Sprintf("m%d", r.IntN(steps)), resources[r.IntN(len(resources))], int64(1+r.IntN(60)))
				case 2:
					to := principals[r.IntN(len(principals))]
					if to == caller {
						continue
					}
					a = transferRight(caller, ids(), to)
				case 3:
					id := ids()
					total := m.rights[id].Amount
					if total < 2 || r.IntN(6) == 0 {
						total = int64(2 + r.IntN(10)) // often a wrong sum
					}
					cut := 1 + r.Int64N(total-1)
					a = splitRight(caller, id, []int64{cut, total - cut})
					if r.IntN(3) == 0 {
						a.IDs = []string{fmt.Sprintf("n%d", r.IntN(steps)), ids()}
						if a.IDs[0] == a.IDs[1] || a.IDs[1] == id {
							continue
						}
					}
				case 4:
					into, other := ids(), ids()
					for _, xid := range sorted() { // often a compatible pair
						x := m.rights[xid]
						if y, ok := m.rights[into]; ok && r.IntN(2) == 0 && x.ID != into && x.Holder == y.Holder && x.Resource == y.Resource {
							other = x.ID
							break
						}
					}
					if into == other {
						continue
					}
					a = mergeRights(caller, into, other)
				case 5:
					a = redeemRight(caller, ids())
				}
				// Mostly act as the holder, so that valid actions are common.
				if rr, ok := m.rights[a.Target]; ok && a.Kind != kernel.KindMintRight && r.IntN(4) > 0 {
					a.Caller = rr.Holder
					if a.To == a.Caller {
						continue
					}
				}
				want := m.apply(a)
				res := w.Do(a)
				require.Equal(t, want.String(), res.Code.String(), "step %d: %+v: %s", step, a, res.Message)
				codes[string(a.Kind)+":"+res.ErrorCode]++
				require.Equal(t, tot, totals(t, w), "step %d: %+v", step, a)
				requireRightsSound(t, w)
			}
			for _, p := range principals {
				got, err := w.K.Rights(ctx, p)
				require.NoError(t, err)
				var want []kernel.Right
				for _, r := range m.rights {
					if r.Holder == p {
						want = append(want, r)
					}
				}
				slices.SortFunc(want, func(x, y kernel.Right) int {
					if x.ID < y.ID {
						return -1
					}
					return 1
				})
				require.Len(t, got, len(want))
				for i := range got {
					require.Equal(t, want[i].ID, got[i].ID)
					require.Equal(t, want[i].Amount, got[i].Amount)
					require.Equal(t, want[i].Resource, got[i].Resource)
					require.Equal(t, want[i].CreatedBy, got[i].CreatedBy)
				}
				for _, res := range resources {
					require.Equal(t, m.quota[p][res], quota(t, w, p, res), "%s %s", p, res)
				}
			}
		})
	}
}
