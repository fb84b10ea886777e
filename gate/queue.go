package gate

import "time"

// The queue is four intrusive FIFO lanes, served in order: Interactive
// retries, Interactive new work, Batch retries, Batch new work.
const numLanes = 2 * NumPriorities

// laneOf returns the lane index for r.
func laneOf(r Request) uint8 {
	l := 2 * uint8(r.Priority.clamp())
	if !r.Retry {
		l++
	}
	return l
}

// blockReason is what a waiter was last found waiting for; state changes
// wake the head only when they concern its reason.
type blockReason uint8

const (
	blockNone        blockReason = iota
	blockQueue                   // not the head
	blockAdmitting               // another waiter is inside Admit
	blockHold                    // cooldown or backoff
	blockConcurrency             // no free slot
	blockStagger                 // opening interval not yet passed
	blockBudget                  // Admit declined
)

// waiter is one queued Acquire call. Its fields are guarded by Gate.mu,
// except ready, which is only sent to (non-blocking) and received from.
type waiter struct {
	prev, next  *waiter
	lane        uint8
	block       blockReason
	hasDeadline bool
	deadline    time.Time
	ready       chan struct{} // buffered(1): a pending wake-up
}

// lane is a doubly linked FIFO list of waiters.
type lane struct {
	head, tail *waiter
}

// wake signals w without blocking; a pending signal is not duplicated.
func wake(w *waiter) {
	select {
	case w.ready <- struct{}{}:
	default:
	}
}

// head returns the first waiter in service order, or nil. Requires g.mu
// held.
func (g *Gate) head() *waiter {
	for i := range g.lanes {
		if h := g.lanes[i].head; h != nil {
			return h
		}
	}
	return nil
}

// wakeHead wakes the head, if any. Requires g.mu held.
func (g *Gate) wakeHead() {
	if h := g.head(); h != nil {
		wake(h)
	}
}

// wakeHeadIf wakes the head if it is blocked for one of the reasons.
// Requires g.mu held.
func (g *Gate) wakeHeadIf(reasons ...blockReason) {
	h := g.head()
	if h == nil {
		return
	}
	for _, r := range reasons {
		if h.block == r {
			wake(h)
			return
		}
	}
}

// wakeDeadlines wakes every waiter with a deadline, so that each can check
// whether a new cooldown or backoff outlasts it. Requires g.mu held.
func (g *Gate) wakeDeadlines() {
	for i := range g.lanes {
		for w := g.lanes[i].head; w != nil; w = w.next {
			if w.hasDeadline {
				wake(w)
			}
		}
	}
}

// push appends w to the tail of its lane. Requires g.mu held.
func (g *Gate) push(w *waiter) {
	l := &g.lanes[w.lane]
	w.prev, w.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	g.nqueued++
	g.queued[w.lane/2]++
}

// remove unlinks w from its lane and, if w was the head, wakes the new
// head. Requires g.mu held and w queued.
func (g *Gate) remove(w *waiter) {
	wasHead := g.head() == w
	l := &g.lanes[w.lane]
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next = nil, nil
	g.nqueued--
	g.queued[w.lane/2]--
	if wasHead {
		g.wakeHead()
	}
}
