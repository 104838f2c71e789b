package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/heraldhq/herald/sdk/internal/proto"
	"github.com/heraldhq/herald/sdk/peerauth"
)

// PluginMap is the go-plugin plugin set the host uses: it dispenses by kind and gets a value
// implementing the kind's interface (Transport or FlushPolicy) plus Describer and Configurable.
func PluginMap() map[string]plugin.Plugin {
	return map[string]plugin.Plugin{
		KindTransport:     &grpcPlugin{kind: KindTransport},
		KindFlushPolicy:   &grpcPlugin{kind: KindFlushPolicy},
		KindActionHandler: &grpcPlugin{kind: KindActionHandler},
	}
}

// servedMap is the plugin set of a plugin process: the one kind it serves.
func servedMap(kind string, impl any) map[string]plugin.Plugin {
	return map[string]plugin.Plugin{kind: &grpcPlugin{kind: kind, impl: impl}}
}

type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	kind string
	impl any
}

func (p *grpcPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterBaseServer(s, &baseServer{impl: p.impl, kind: p.kind, broker: broker})
	switch p.kind {
	case KindTransport:
		t, ok := p.impl.(Transport)
		if !ok {
			return fmt.Errorf("herald plugin: %T does not implement sdk.Transport", p.impl)
		}
		pb.RegisterTransportServer(s, &transportServer{impl: TraceTransport(t)})
	case KindFlushPolicy:
		f, ok := p.impl.(FlushPolicy)
		if !ok {
			return fmt.Errorf("herald plugin: %T does not implement sdk.FlushPolicy", p.impl)
		}
		pb.RegisterFlushPolicyServer(s, &flushServer{impl: f})
	case KindActionHandler:
		h, ok := p.impl.(ActionHandler)
		if !ok {
			return fmt.Errorf("herald plugin: %T does not implement sdk.ActionHandler", p.impl)
		}
		pb.RegisterActionHandlerServer(s, &actionServer{impl: TraceActionHandler(h)})
	}
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	base := baseClient{c: pb.NewBaseClient(c), kind: p.kind, broker: broker}
	switch p.kind {
	case KindTransport:
		tc := pb.NewTransportClient(c)
		return &transportClient{baseClient: base, c: tc, stream: &sendStreams{c: tc}}, nil
	case KindFlushPolicy:
		return &flushClient{baseClient: base, c: pb.NewFlushPolicyClient(c)}, nil
	case KindActionHandler:
		return newActionClient(base, pb.NewActionHandlerClient(c))
	}
	return nil, fmt.Errorf("herald plugin: unknown kind %q", p.kind)
}

// --- base ---

type baseServer struct {
	pb.UnimplementedBaseServer
	impl   any
	kind   string
	broker *plugin.GRPCBroker
}

func (s *baseServer) Info(context.Context, *pb.InfoRequest) (*pb.InfoResponse, error) {
	info, err := InfoOf(s.impl, s.kind)
	resp := &pb.InfoResponse{Name: info.Name, Kind: info.Kind, ProtocolVersion: uint32(ProtocolVersion)}
	if err != nil {
		resp.SchemaError = err.Error()
	}
	for _, k := range info.Schema {
		var def []byte
		if k.Default != nil {
			def, _ = json.Marshal(k.Default)
		}
		resp.Schema = append(resp.Schema, &pb.ConfigKey{Path: k.Path, Type: k.Type, Required: k.Required,
			DefaultJson: string(def), Description: k.Description})
	}
	return resp, nil
}

func (s *baseServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	if t := req.Telemetry; t != nil && !req.ValidateOnly {
		info, _ := InfoOf(s.impl, s.kind)
		name := info.Name
		if name == "" {
			name = s.kind
		}
		setupTracing(Telemetry{Endpoint: t.Endpoint, Protocol: t.Protocol, SampleRatio: t.SampleRatio, ServiceName: t.ServiceName}, name, req.NodeName)
	}
	cr := ConfigureRequest{Config: RawConfig(req.ConfigJson), NodeName: req.NodeName, NodeURL: req.NodeUrl,
		LogLevel: req.LogLevel, Host: noHost{}, ValidateOnly: req.ValidateOnly,
		Logger: configuredLogger(s.impl, s.kind, req.NodeName, req.LogLevel)}
	if req.HostBrokerId != 0 && s.broker != nil {
		conn, err := s.broker.DialWithOptions(req.HostBrokerId, clientTracing(), grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)))
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "host service: %v", err)
		}
		cr.Host = &hostClient{c: pb.NewHostClient(conn)}
	}
	if pa := req.PeerAuth; pa != nil {
		cr.PeerAuth = peerauth.Config{Secrets: pa.Secrets, ReplayWindow: time.Duration(pa.ReplayWindowNs),
			TLS:           peerauth.TLSFiles{CAFile: pa.CaFile, CertFile: pa.CertFile, KeyFile: pa.KeyFile},
			TLSMinVersion: pa.TlsMinVersion, MTLS: pa.Mtls, PeerNames: pa.PeerNames, Insecure: pa.Insecure}
	}
	if t := req.Telemetry; t != nil {
		cr.Telemetry = Telemetry{Endpoint: t.Endpoint, Protocol: t.Protocol, SampleRatio: t.SampleRatio, ServiceName: t.ServiceName}
	}
	resp := &pb.ConfigureResponse{}
	for _, d := range Configure(ctx, s.impl, cr) {
		resp.Diagnostics = append(resp.Diagnostics, &pb.Diagnostic{Path: d.Path, Message: d.Message, Warning: d.Warning})
	}
	return resp, nil
}

type baseClient struct {
	c      pb.BaseClient
	kind   string
	broker *plugin.GRPCBroker
}

// Info implements Describer.
func (b baseClient) Info() Info {
	info, _ := b.remoteInfo()
	return info
}

// remoteInfo is the plugin's Info with its schema, or why the plugin cannot describe its config
// (see InfoOf).
func (b baseClient) remoteInfo() (Info, error) {
	resp, err := b.c.Info(context.Background(), &pb.InfoRequest{})
	if err != nil {
		return Info{Kind: b.kind}, fmt.Errorf("info call failed: %v", err)
	}
	info := Info{Name: resp.Name, Kind: resp.Kind, ProtocolVersion: int(resp.ProtocolVersion)}
	for _, k := range resp.Schema {
		var def any
		if k.DefaultJson != "" {
			def, _ = decodeJSON([]byte(k.DefaultJson))
		}
		info.Schema = append(info.Schema, ConfigKey{Path: k.Path, Type: k.Type, Required: k.Required, Default: def, Description: k.Description})
	}
	if resp.SchemaError != "" {
		return info, errors.New(resp.SchemaError)
	}
	return info, nil
}

// Configure implements Configurable; a transport failure is reported as one diagnostic.
func (b baseClient) Configure(ctx context.Context, req ConfigureRequest) []Diagnostic {
	preq := &pb.ConfigureRequest{ConfigJson: req.Config, NodeName: req.NodeName, NodeUrl: req.NodeURL,
		LogLevel: req.LogLevel, Telemetry: &pb.Telemetry{Endpoint: req.Telemetry.Endpoint, Protocol: req.Telemetry.Protocol,
			SampleRatio: req.Telemetry.SampleRatio, ServiceName: req.Telemetry.ServiceName},
		PeerAuth: &pb.PeerAuth{Secrets: req.PeerAuth.Secrets, ReplayWindowNs: int64(req.PeerAuth.ReplayWindow),
			CaFile: req.PeerAuth.TLS.CAFile, CertFile: req.PeerAuth.TLS.CertFile, KeyFile: req.PeerAuth.TLS.KeyFile,
			TlsMinVersion: req.PeerAuth.TLSMinVersion, Mtls: req.PeerAuth.MTLS, PeerNames: req.PeerAuth.PeerNames,
			Insecure: req.PeerAuth.Insecure},
		ValidateOnly: req.ValidateOnly}
	if req.Host != nil && b.broker != nil && !req.ValidateOnly {
		if _, none := req.Host.(noHost); !none {
			preq.HostBrokerId = serveHost(b.broker, req.Host)
		}
	}
	resp, err := b.c.Configure(ctx, preq)
	if err != nil {
		return []Diagnostic{{Message: fmt.Sprintf("configure call failed: %v", err)}}
	}
	var out []Diagnostic
	for _, d := range resp.Diagnostics {
		out = append(out, Diagnostic{Path: d.Path, Message: d.Message, Warning: d.Warning})
	}
	return out
}

// --- transport ---

type transportServer struct {
	pb.UnimplementedTransportServer
	impl Transport
}

func (s *transportServer) Send(ctx context.Context, req *pb.SendRequest) (*pb.SendResponse, error) {
	return s.send(ctx, req), nil
}

// send runs one batch of a Send or SendStream request through the plugin's transport.
func (s *transportServer) send(ctx context.Context, req *pb.SendRequest) *pb.SendResponse {
	b := Batch{ID: req.BatchId, Items: itemsFromPB(req.Items)}
	var peer Peer
	if req.Peer != nil {
		peer = Peer{Name: req.Peer.Name, URL: req.Peer.Url, Address: req.Peer.Address}
	}
	results, err := s.impl.Send(ctx, peer, b)
	if err != nil {
		return &pb.SendResponse{FailureClass: int32(ClassOf(err)), Error: err.Error()}
	}
	return &pb.SendResponse{Results: resultsToPB(results)}
}

type transportClient struct {
	baseClient
	c      pb.TransportClient
	stream *sendStreams
}

// Send implements Transport over gRPC: on the plugin's batch stream (grpc_stream.go), or as a
// unary call when the batch is in a sampled trace or the plugin has no stream.
func (t *transportClient) Send(ctx context.Context, peer Peer, b Batch) ([]ItemResult, error) {
	req := &pb.SendRequest{Peer: &pb.Peer{Name: peer.Name, Url: peer.URL, Address: peer.Address}, BatchId: b.ID,
		Items: itemsToPB(b.Items)}
	if t.stream.usable(ctx) {
		resp, err := t.stream.send(ctx, req)
		if err != errNoStream {
			if err != nil {
				return nil, err
			}
			return sendResult(resp)
		}
		// A fresh message: the stream's writer may still be encoding the one it was handed. The
		// two share only what neither writes (the peer and the items).
		req = &pb.SendRequest{Peer: req.Peer, BatchId: req.BatchId, Items: req.Items}
	}
	resp, err := t.c.Send(ctx, req)
	if err != nil {
		return nil, callError(ctx, err)
	}
	return sendResult(resp)
}

// sendResult is a plugin's answer to one batch as Send returns it.
func sendResult(resp *pb.SendResponse) ([]ItemResult, error) {
	if resp.FailureClass != 0 {
		err := errors.New(resp.Error)
		if strings.HasSuffix(resp.Error, ErrTooLarge.Error()) {
			err = remoteTooLarge(resp.Error) // the marker survives the process boundary
		}
		return nil, Fail(FailureClass(resp.FailureClass), err)
	}
	return resultsFromPB(resp.Results), nil
}

// remoteTooLarge is a plugin's error that wrapped ErrTooLarge, as its text.
type remoteTooLarge string

func (e remoteTooLarge) Error() string { return string(e) }

func (remoteTooLarge) Unwrap() error { return ErrTooLarge }

// callError classifies a failed call into a plugin: a plugin that is gone or restarting is a
// transient failure, so the batch goes back to the front of the queue and nothing is lost.
func callError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return Fail(Transient, ctx.Err())
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Canceled, codes.Aborted, codes.Internal, codes.Unknown:
		return Fail(Transient, fmt.Errorf("plugin call: %w", err))
	case codes.DeadlineExceeded, codes.ResourceExhausted:
		return Fail(Congestion, fmt.Errorf("plugin call: %w", err))
	}
	return Fail(Permanent, fmt.Errorf("plugin call: %w", err))
}

// --- flush policy ---

type flushServer struct {
	pb.UnimplementedFlushPolicyServer
	impl FlushPolicy
}

func (s *flushServer) Decide(ctx context.Context, st *pb.PendingState) (*pb.FlushDecision, error) {
	d, err := s.impl.Decide(ctx, PendingState{
		Count: int(st.Count), Bytes: st.Bytes, OldestAge: durationOf(st.OldestAgeNs), IdleWorkers: int(st.IdleWorkers),
		InFlight: int(st.InFlight), RecentLatency: durationOf(st.RecentLatencyNs), RecentErrors: int(st.RecentErrors),
		RecentSends: int(st.RecentSends), RecentWindow: durationOf(st.RecentWindowNs), MaxBatchSize: int(st.MaxBatchSize),
		MaxBufferSize: int(st.MaxBufferSize),
	})
	if err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	return &pb.FlushDecision{CutNow: d.CutNow, MaxBatch: int64(d.MaxBatch), MinCount: int64(d.MinCount),
		MaxAgeNs: int64(d.MaxAge), RecheckAfterNs: int64(d.RecheckAfter)}, nil
}

type flushClient struct {
	baseClient
	c pb.FlushPolicyClient
}

// Decide implements FlushPolicy over gRPC.
func (f *flushClient) Decide(ctx context.Context, s PendingState) (FlushDecision, error) {
	d, err := f.c.Decide(ctx, &pb.PendingState{Count: int64(s.Count), Bytes: s.Bytes, OldestAgeNs: int64(s.OldestAge),
		IdleWorkers: int64(s.IdleWorkers), InFlight: int64(s.InFlight), RecentLatencyNs: int64(s.RecentLatency),
		RecentErrors: int64(s.RecentErrors), RecentSends: int64(s.RecentSends), RecentWindowNs: int64(s.RecentWindow),
		MaxBatchSize: int64(s.MaxBatchSize), MaxBufferSize: int64(s.MaxBufferSize)})
	if err != nil {
		return FlushDecision{}, callError(ctx, err)
	}
	return FlushDecision{CutNow: d.CutNow, MaxBatch: int(d.MaxBatch), MinCount: int(d.MinCount),
		MaxAge: durationOf(d.MaxAgeNs), RecheckAfter: durationOf(d.RecheckAfterNs)}, nil
}
