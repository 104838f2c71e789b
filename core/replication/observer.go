package replication

import "github.com/heraldhq/herald/sdk"

// Observer is told what happens to tasks and batches, so tracing and metrics can follow a task
// without reshaping the pipeline. Methods run on the pipeline's goroutines and must not block.
// Embed NopObserver to implement only some.
type Observer interface {
	// Accepted: a task entered the peer's acceptor queue.
	Accepted(peer string, t *Task)
	// Dropped: a task left without being acknowledged; reason is "superseded", "expired",
	// "overflow" or "permanent".
	Dropped(peer string, t *Task, reason string)
	// Batched: tasks were cut into a batch.
	Batched(peer string, batchID string, ts []*Task)
	// Sent: a batch send finished; err is nil on success. Called before Acked/Retried.
	Sent(peer string, batchID string, ts []*Task, items []sdk.Item, err error)
	// Retried: a task goes back to the pending stage after a failed send.
	Retried(peer string, t *Task, class sdk.FailureClass)
	// Acked: the peer answered for the task with an item status code.
	Acked(peer string, t *Task, status int)
}

// NopObserver does nothing.
type NopObserver struct{}

// Accepted implements Observer.
func (NopObserver) Accepted(string, *Task) {}

// Dropped implements Observer.
func (NopObserver) Dropped(string, *Task, string) {}

// Batched implements Observer.
func (NopObserver) Batched(string, string, []*Task) {}

// Sent implements Observer.
func (NopObserver) Sent(string, string, []*Task, []sdk.Item, error) {}

// Retried implements Observer.
func (NopObserver) Retried(string, *Task, sdk.FailureClass) {}

// Acked implements Observer.
func (NopObserver) Acked(string, *Task, int) {}
