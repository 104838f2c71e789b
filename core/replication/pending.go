package replication

import "container/list"

// pendingStage is the middle queue: task id -> newest task, in arrival order, bounded in tasks
// (max, Eureka's maxBufferSize) and in encoded bytes (maxBytes). It is not safe for concurrent use;
// the pipeline's acceptor goroutine owns it. Every method takes the time, so the rules are tested
// with a fake clock.
type pendingStage struct {
	max      int
	maxBytes int64
	byID     map[string]*list.Element
	order    list.List // of *Task, oldest first
	bytes    int64
	c        *counters
}

func newPendingStage(max int, maxBytes int64, c *counters) *pendingStage {
	return &pendingStage{max: max, maxBytes: maxBytes, byID: map[string]*list.Element{}, c: c}
}

// full says whether t cannot be added without dropping: the stage holds max tasks, or t's bytes
// would take it past maxBytes. An empty stage is never full, so a task larger than maxBytes still
// goes through alone.
func (s *pendingStage) full(t *Task) bool {
	n := s.order.Len()
	return n > 0 && (n >= s.max || s.bytes+t.size() > s.maxBytes)
}

func (s *pendingStage) len() int { return s.order.Len() }

// add takes a new task from the acceptor queue. A pending task with the same id is replaced in
// place, keeping its position (so a burst of heartbeats for one instance collapses into one send
// and a re-register keeps the earlier slot); otherwise the task goes to the back, after dropping
// the oldest tasks while the stage is full (in tasks or in bytes), as Eureka's AcceptorExecutor
// drops the oldest on overflow. It returns the task it replaced and the tasks it dropped, if any.
func (s *pendingStage) add(t *Task) (replaced *Task, dropped []*Task) {
	if e, ok := s.byID[t.ID]; ok {
		old := e.Value.(*Task)
		e.Value = t
		s.bytes += t.size() - old.size()
		s.c.superseded.Add(1)
		// A larger version may take the stage past its bytes: drop the oldest (possibly t itself).
		for s.bytes > s.maxBytes && s.order.Len() > 1 {
			dropped = append(dropped, s.popFront())
			s.c.overflow.Add(1)
		}
		return old, dropped
	}
	for s.full(t) {
		dropped = append(dropped, s.popFront())
		s.c.overflow.Add(1)
	}
	s.byID[t.ID] = s.order.PushBack(t)
	s.bytes += t.size()
	return nil, dropped
}

// requeue puts the tasks of a failed batch back at the front, in their original relative order,
// so retried work goes out first. A task whose id is pending again (a newer version arrived) or
// that expired is dropped; so is the rest when the stage is full.
func (s *pendingStage) requeue(ts []*Task, nowMs int64) (superseded, expired, overflow []*Task) {
	for i := len(ts) - 1; i >= 0; i-- {
		t := ts[i]
		switch {
		case s.byID[t.ID] != nil:
			superseded = append(superseded, t)
			s.c.superseded.Add(1)
		case t.expired(nowMs):
			expired = append(expired, t)
			s.c.expired.Add(1)
		case s.full(t):
			overflow = append(overflow, t)
			s.c.overflow.Add(1)
		default:
			s.byID[t.ID] = s.order.PushFront(t)
			s.bytes += t.size()
		}
	}
	return superseded, expired, overflow
}

// oldest returns the task at the front, or nil.
func (s *pendingStage) oldest() *Task {
	if e := s.order.Front(); e != nil {
		return e.Value.(*Task)
	}
	return nil
}

func (s *pendingStage) popFront() *Task {
	e := s.order.Front()
	if e == nil {
		return nil
	}
	return s.remove(e)
}

func (s *pendingStage) remove(e *list.Element) *Task {
	t := s.order.Remove(e).(*Task)
	delete(s.byID, t.ID)
	s.bytes -= t.size()
	return t
}

// cut takes live tasks from the front, up to max tasks and maxBytes encoded bytes (the batch's
// envelope included); a single task larger than maxBytes goes alone. Expired tasks met on the way
// are dropped. Tasks for which wait returns true (their instance has work in flight) stay where
// they are, and so does every later task of their instance, so one instance's tasks are sent in
// the order they came.
func (s *pendingStage) cut(max int, maxBytes int64, nowMs int64, wait func(*Task) bool) (batch, expired []*Task) {
	total := batchEnvelope
	for e := s.order.Front(); e != nil && len(batch) < max; {
		next := e.Next()
		t := e.Value.(*Task)
		switch {
		case t.expired(nowMs):
			s.remove(e)
			expired = append(expired, t)
			s.c.expired.Add(1)
		case wait != nil && wait(t):
		case len(batch) > 0 && total+t.size() > maxBytes:
			return batch, expired
		default:
			s.remove(e)
			batch = append(batch, t)
			total += t.size()
		}
		e = next
	}
	return batch, expired
}

// dropExpiredFront drops expired tasks at the front, so the age of the oldest live task drives the
// batching delay.
func (s *pendingStage) dropExpiredFront(nowMs int64) (expired []*Task) {
	for {
		t := s.oldest()
		if t == nil || !t.expired(nowMs) {
			return expired
		}
		s.popFront()
		s.c.expired.Add(1)
		expired = append(expired, t)
	}
}

// shaper is Eureka's TrafficShaper: after a congestion or a network failure, all sending to the
// peer pauses for the rest of the configured delay.
type shaper struct {
	congestionDelay, failureDelay, cap int64 // ms
	lastCongestion, lastFailure        int64
}

func (s *shaper) record(class int, nowMs int64) {
	switch class {
	case classCongestion:
		s.lastCongestion = nowMs
	case classTransient:
		s.lastFailure = nowMs
	}
}

// delay returns how long sending must still wait (0: send now).
func (s *shaper) delay(nowMs int64) int64 {
	if s.lastCongestion > 0 {
		if d := min(s.congestionDelay, s.cap) - (nowMs - s.lastCongestion); d > 0 {
			return d
		}
		s.lastCongestion = 0
	}
	if s.lastFailure > 0 {
		if d := min(s.failureDelay, s.cap) - (nowMs - s.lastFailure); d > 0 {
			return d
		}
		s.lastFailure = 0
	}
	return 0
}

const (
	classCongestion = iota + 1
	classTransient
)
