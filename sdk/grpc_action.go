package sdk

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/heraldhq/herald/sdk/internal/proto"
)

// --- conversions between the SDK's Go types and the wire types ---

func itemToPB(it Item) *pb.Item {
	return &pb.Item{Action: string(it.Action), App: it.App, Id: it.ID, LastDirtyTimestamp: it.LastDirtyTimestamp,
		Status: it.Status, OverriddenStatus: it.OverriddenStatus, Instance: it.Instance, Payload: it.Payload,
		TraceParent: it.TraceParent, StatusVersion: it.StatusVersion}
}

func itemFromPB(it *pb.Item) Item {
	if it == nil {
		return Item{}
	}
	return Item{Action: Action(it.Action), App: it.App, ID: it.Id, LastDirtyTimestamp: it.LastDirtyTimestamp,
		Status: it.Status, OverriddenStatus: it.OverriddenStatus, Instance: it.Instance, Payload: it.Payload,
		TraceParent: it.TraceParent, StatusVersion: it.StatusVersion}
}

func itemsToPB(items []Item) []*pb.Item {
	out := make([]*pb.Item, len(items))
	for i, it := range items {
		out[i] = itemToPB(it)
	}
	return out
}

func itemsFromPB(items []*pb.Item) []Item {
	out := make([]Item, len(items))
	for i, it := range items {
		out[i] = itemFromPB(it)
	}
	return out
}

func resultsToPB(rs []ItemResult) []*pb.ItemResult {
	if rs == nil {
		return nil
	}
	out := make([]*pb.ItemResult, len(rs))
	for i, r := range rs {
		out[i] = &pb.ItemResult{StatusCode: int32(r.StatusCode), Entity: r.Entity}
	}
	return out
}

func resultsFromPB(rs []*pb.ItemResult) []ItemResult {
	if rs == nil {
		return nil
	}
	out := make([]ItemResult, len(rs))
	for i, r := range rs {
		out[i] = ItemResult{StatusCode: int(r.StatusCode), Entity: r.Entity}
	}
	return out
}

// --- action handler ---

type actionServer struct {
	pb.UnimplementedActionHandlerServer
	impl ActionHandler
}

func (s *actionServer) Actions(context.Context, *pb.ActionsRequest) (*pb.ActionsResponse, error) {
	resp := &pb.ActionsResponse{}
	for _, a := range s.impl.Actions() {
		resp.Actions = append(resp.Actions, &pb.ActionSpec{Action: string(a.Action), Accept: a.Accept, Receive: int32(a.Receive)})
	}
	return resp, nil
}

func (s *actionServer) Accept(ctx context.Context, req *pb.AcceptRequest) (*pb.AcceptResponse, error) {
	it, err := s.impl.Accept(ctx, itemFromPB(req.Item))
	if err != nil {
		var r *Refusal
		if errors.As(err, &r) {
			return &pb.AcceptResponse{RefusalCode: int32(r.Code), RefusalMessage: r.Message}, nil
		}
		return &pb.AcceptResponse{Error: err.Error()}, nil
	}
	return &pb.AcceptResponse{Item: itemToPB(it)}, nil
}

func (s *actionServer) Receive(ctx context.Context, req *pb.ReceiveRequest) (*pb.ReceiveResponse, error) {
	results, err := s.impl.Receive(ctx, ReceiveRequest{Mode: ReceiveMode(req.Mode), Action: Action(req.Action),
		Items: itemsFromPB(req.Items), Results: resultsFromPB(req.Results)})
	if err != nil {
		return &pb.ReceiveResponse{Error: err.Error()}, nil
	}
	return &pb.ReceiveResponse{Results: resultsToPB(results)}, nil
}

type actionClient struct {
	baseClient
	c       pb.ActionHandlerClient
	actions []ActionSpec
}

// newActionClient reads the handler's actions once: they never change during its life.
func newActionClient(base baseClient, c pb.ActionHandlerClient) (*actionClient, error) {
	resp, err := c.Actions(context.Background(), &pb.ActionsRequest{})
	if err != nil {
		return nil, fmt.Errorf("herald plugin: reading the handler's actions: %w", err)
	}
	ac := &actionClient{baseClient: base, c: c}
	for _, a := range resp.Actions {
		ac.actions = append(ac.actions, ActionSpec{Action: Action(a.Action), Accept: a.Accept, Receive: ReceiveMode(a.Receive)})
	}
	return ac, nil
}

// Actions implements ActionHandler.
func (a *actionClient) Actions() []ActionSpec { return a.actions }

// Accept implements ActionHandler over gRPC.
func (a *actionClient) Accept(ctx context.Context, item Item) (Item, error) {
	resp, err := a.c.Accept(ctx, &pb.AcceptRequest{Item: itemToPB(item)})
	switch {
	case err != nil:
		return item, callError(ctx, err)
	case resp.RefusalCode != 0:
		return item, &Refusal{Code: int(resp.RefusalCode), Message: resp.RefusalMessage}
	case resp.Error != "":
		return item, errors.New(resp.Error)
	}
	return itemFromPB(resp.Item), nil
}

// Receive implements ActionHandler over gRPC.
func (a *actionClient) Receive(ctx context.Context, req ReceiveRequest) ([]ItemResult, error) {
	resp, err := a.c.Receive(ctx, &pb.ReceiveRequest{Mode: int32(req.Mode), Action: string(req.Action),
		Items: itemsToPB(req.Items), Results: resultsToPB(req.Results)})
	if err != nil {
		return nil, callError(ctx, err)
	}
	if resp.Error != "" {
		return nil, errors.New(resp.Error)
	}
	return resultsFromPB(resp.Results), nil
}

// --- host service, served by herald over the broker ---

// serveHost serves h on a new broker stream and returns its id for the plugin to dial.
func serveHost(broker *plugin.GRPCBroker, h Host) uint32 {
	id := broker.NextId()
	go broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		// The server handler puts the plugin's trace context into each call's context, so what the
		// host does for the plugin (apply an inbound batch) joins the plugin's trace.
		s := grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes), serverTracing())...)
		pb.RegisterHostServer(s, &hostServer{h: h})
		return s
	})
	return id
}

type hostServer struct {
	pb.UnimplementedHostServer
	h Host
}

func (s *hostServer) Instance(ctx context.Context, req *pb.InstanceRequest) (*pb.InstanceResponse, error) {
	b, found, err := s.h.Instance(ctx, req.App, req.Id)
	if err != nil {
		return nil, err
	}
	return &pb.InstanceResponse{Found: found, Instance: b}, nil
}

func (s *hostServer) Apply(ctx context.Context, req *pb.ItemsRequest) (*pb.ResultsResponse, error) {
	rs, err := s.h.Apply(ctx, itemsFromPB(req.Items))
	if err != nil {
		return nil, err
	}
	return &pb.ResultsResponse{Results: resultsToPB(rs)}, nil
}

func (s *hostServer) Replicate(ctx context.Context, req *pb.ItemsRequest) (*pb.ResultsResponse, error) {
	if err := s.h.Replicate(ctx, itemsFromPB(req.Items)); err != nil {
		return nil, err
	}
	return &pb.ResultsResponse{}, nil
}

func (s *hostServer) Receive(ctx context.Context, req *pb.SendRequest) (*pb.ResultsResponse, error) {
	rs, err := s.h.Receive(ctx, Batch{ID: req.BatchId, Items: itemsFromPB(req.Items)})
	if err != nil {
		return nil, err
	}
	return &pb.ResultsResponse{Results: resultsToPB(rs)}, nil
}

// hostClient is the Host a plugin process gets: each call goes back to herald.
type hostClient struct{ c pb.HostClient }

func (h *hostClient) Instance(ctx context.Context, app, id string) ([]byte, bool, error) {
	resp, err := h.c.Instance(ctx, &pb.InstanceRequest{App: app, Id: id})
	if err != nil {
		return nil, false, fmt.Errorf("host: %w", err)
	}
	return resp.Instance, resp.Found, nil
}

func (h *hostClient) Apply(ctx context.Context, items []Item) ([]ItemResult, error) {
	resp, err := h.c.Apply(ctx, &pb.ItemsRequest{Items: itemsToPB(items)})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	return resultsFromPB(resp.Results), nil
}

func (h *hostClient) Replicate(ctx context.Context, items []Item) error {
	if _, err := h.c.Replicate(ctx, &pb.ItemsRequest{Items: itemsToPB(items)}); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	return nil
}

func (h *hostClient) Receive(ctx context.Context, b Batch) ([]ItemResult, error) {
	resp, err := h.c.Receive(ctx, &pb.SendRequest{BatchId: b.ID, Items: itemsToPB(b.Items)})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	return resultsFromPB(resp.Results), nil
}

// noHost is the Host of a plugin configured without one.
type noHost struct{}

func (noHost) Instance(context.Context, string, string) ([]byte, bool, error) {
	return nil, false, ErrNoHost
}
func (noHost) Apply(context.Context, []Item) ([]ItemResult, error)  { return nil, ErrNoHost }
func (noHost) Replicate(context.Context, []Item) error              { return ErrNoHost }
func (noHost) Receive(context.Context, Batch) ([]ItemResult, error) { return nil, ErrNoHost }

// NoHost returns a Host whose every call fails with ErrNoHost (for tests of plugins that do not
// use the host).
func NoHost() Host { return noHost{} }
