package retry

import (
	"math"
	"sync"
	"time"
)

// BudgetWindow is the sliding window over which a Budget counts requests
// and retries.
const BudgetWindow = 10 * time.Second

const (
	budgetSlots = 10 // one per second of BudgetWindow
	milli       = 1000
	// maxRatio bounds the ratio so that token arithmetic cannot overflow.
	maxRatio = 1e6
)

// Budget is a retry budget: it lets retries add at most a fixed fraction
// to the traffic, like the retry budgets of gRPC and Finagle. Each request
// deposits ratio tokens and each retry withdraws one; tokens older than
// BudgetWindow expire, and a reserve of minPerSecond x BudgetWindow tokens
// per window lets a client with little traffic retry at all. Over any
// window the retries granted therefore stay within ratio x requests plus
// the reserve, and over a long run within ratio x requests plus about
// minPerSecond per second.
//
// Time is a parameter: OnRequest and TryRetry take the current time. Calls
// with a time earlier than a previous call's count in the latest second
// seen. Amounts are kept in thousandths of a token, so ratios are exact to
// three decimals.
//
// A Budget is safe for concurrent use. The zero Budget grants no retries;
// use NewBudget.
type Budget struct {
	mu      sync.Mutex
	deposit int64 // per request, in thousandths
	reserve int64 // per window, in thousandths
	slots   [budgetSlots]int64
	cur     int64 // the second the newest slot stands for
	started bool
}

// NewBudget returns a Budget granting retries up to ratio times the number
// of requests (0.1: one retry per ten requests), plus minPerSecond retries
// per second whatever the traffic. Negative or NaN arguments mean 0; ratio
// is capped at 1e6.
func NewBudget(ratio, minPerSecond float64) *Budget {
	clean := func(x float64) float64 {
		if !(x > 0) {
			return 0
		}
		return min(x, maxRatio)
	}
	return &Budget{
		deposit: int64(math.Round(clean(ratio) * milli)),
		reserve: int64(math.Round(clean(minPerSecond) * BudgetWindow.Seconds() * milli)),
	}
}

// OnRequest records a request (not a retry) at now: it deposits ratio
// tokens.
func (b *Budget) OnRequest(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	*b.slot(now) += b.deposit
}

// TryRetry reports whether a retry is allowed at now and, if so, withdraws
// it from the budget.
func (b *Budget) TryRetry(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.slot(now)
	if b.balance() < milli {
		return false
	}
	*s -= milli
	return true
}

// Available returns how many retries the budget would grant at now, for
// metrics. It may be negative after tokens expired while the retries they
// paid for are still in the window.
func (b *Budget) Available(now time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.slot(now)
	return float64(b.balance()) / milli
}

// slot advances the window to now, expiring old slots, and returns the
// current slot. Requires b.mu held.
func (b *Budget) slot(now time.Time) *int64 {
	sec := now.Unix()
	switch {
	case !b.started:
		b.cur, b.started = sec, true
	case sec > b.cur:
		if sec-b.cur >= budgetSlots {
			b.slots = [budgetSlots]int64{}
		} else {
			for s := b.cur + 1; s <= sec; s++ {
				b.slots[index(s)] = 0
			}
		}
		b.cur = sec
	}
	return &b.slots[index(b.cur)]
}

// balance returns the reserve plus the window's net deposits. Requires
// b.mu held.
func (b *Budget) balance() int64 {
	sum := b.reserve
	for _, v := range b.slots {
		sum += v
	}
	return sum
}

// index maps a second onto its slot, also for seconds before 1970.
func index(sec int64) int {
	return int((sec%budgetSlots + budgetSlots) % budgetSlots)
}
