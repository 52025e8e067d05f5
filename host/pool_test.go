package host

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func newTestModule(max int) *module {
	return &module{max: max, all: map[*instance]struct{}{}}
}

// TestPool_slots: trySlot takes free slots only, the warmest idle instance
// comes first, and put frees the slot whether or not it pools.
func TestPool_slots(t *testing.T) {
	m := newTestModule(2)
	a, b := &instance{}, &instance{}
	m.idle = []*instance{a, b}

	got, ok := m.trySlot()
	require.True(t, ok)
	require.Same(t, b, got, "most recently pooled first")
	got, ok = m.trySlot()
	require.True(t, ok)
	require.Same(t, a, got)
	_, ok = m.trySlot()
	require.False(t, ok, "both slots are taken")

	require.True(t, m.put(a))
	require.False(t, m.put(nil), "nothing to pool")
	require.Zero(t, m.inUse)
	require.Equal(t, []*instance{a}, m.idle)

	got, ok = m.trySlot()
	require.True(t, ok)
	require.Same(t, a, got)
	m.drain() // nothing idle to close
	require.False(t, m.put(a), "a drained pool does not take instances back")
	require.Empty(t, m.idle)
	require.Zero(t, m.inUse)
}

// TestPool_waitersFIFO: released slots go to waiters oldest first, and a
// waiter that gives up leaves the queue without losing a slot.
func TestPool_waitersFIFO(t *testing.T) {
	m := newTestModule(1)
	_, ok := m.trySlot()
	require.True(t, ok)

	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			require.NoError(t, m.waitSlot(context.Background(), nil))
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			m.put(nil)
		}()
		// Queue them in a known order.
		require.Eventually(t, func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			return len(m.waiters) == i+1
		}, 5*time.Second, time.Millisecond)
	}
	m.put(nil)
	wg.Wait()
	require.Equal(t, []int{0, 1, 2}, order)
	require.Zero(t, m.inUse)
	require.Empty(t, m.waiters)
}

func TestPool_waitGivesUp(t *testing.T) {
	m := newTestModule(1)
	_, ok := m.trySlot()
	require.True(t, ok)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := m.waitSlot(ctx, nil)
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, m.waiters)

	closing := make(chan struct{})
	close(closing)
	require.ErrorIs(t, m.waitSlot(context.Background(), closing), ErrClosed)
	require.Empty(t, m.waiters)

	// A slot granted to a waiter that has just given up is passed on, not lost.
	ch := make(chan struct{}, 1)
	m.waiters = append(m.waiters, ch)
	m.put(nil) // grants the slot to ch
	require.Equal(t, 1, m.inUse)
	m.mu.Lock()
	m.freeSlotLocked() // what waitSlot does when it finds itself granted
	m.mu.Unlock()
	require.Zero(t, m.inUse)
}

// TestPool_hammer: many callers on two slots, through every path (idle,
// fresh, hand-over to waiters): never more than two hold a slot, nobody
// waits forever, and every slot comes back.
func TestPool_hammer(t *testing.T) {
	const max, goroutines, rounds = 2, 8, 2000
	m := newTestModule(max)
	var holders, peak atomic.Int32
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				inst, ok := m.trySlot()
				if !ok {
					require.NoError(t, m.waitSlot(context.Background(), nil))
					inst = m.popIdle()
				}
				if inst == nil {
					inst = &instance{}
				}
				n := holders.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				holders.Add(-1)
				if (g+i)%7 == 0 {
					m.put(nil) // as after a failure: the instance is dropped
				} else {
					m.put(inst)
				}
			}
		}()
	}
	wg.Wait()
	require.LessOrEqual(t, peak.Load(), int32(max))
	require.Zero(t, m.inUse)
	require.Empty(t, m.waiters)
	require.LessOrEqual(t, len(m.idle), max)
}
