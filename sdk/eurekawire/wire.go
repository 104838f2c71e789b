// Package eurekawire reads and writes Eureka's peer replication batch format: the body of
// POST {base}/peerreplication/batch (a ReplicationList) and its answer (a ReplicationListResponse).
// Transports that peer with Eureka servers, and herald's batch endpoint, use it.
//
// Three herald extensions ride along and are ignored by Eureka: "traceparent" (the W3C trace
// context of the item's task), "payload" (base64 data of a custom action) and "statusVersion" (the
// order of a status change, sdk.Item.StatusVersion).
package eurekawire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/eurekawire/exactjson"
)

// ErrParse is wrapped by every decoding error.
var ErrParse = errors.New("cannot parse replication batch")

// AppendReplicationList appends {"replicationList":[...]} for the items, in Eureka's field order
// (appName, id, lastDirtyTimestamp as a number, overriddenStatus, status, instanceInfo bare, action),
// null fields omitted. Custom actions carry their Payload as base64 in "payload" (ignored by Eureka).
// A non-empty TraceParent is carried as "traceparent" (ignored by Eureka).
func AppendReplicationList(dst []byte, items []sdk.Item) []byte {
	dst = append(dst, `{"replicationList":[`...)
	for i := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		it := &items[i]
		dst = append(dst, `{"appName":`...)
		dst = appendJSONString(dst, it.App)
		dst = append(dst, `,"id":`...)
		dst = appendJSONString(dst, it.ID)
		if it.LastDirtyTimestamp != 0 {
			dst = append(dst, `,"lastDirtyTimestamp":`...)
			dst = strconv.AppendInt(dst, it.LastDirtyTimestamp, 10)
		}
		if it.OverriddenStatus != "" {
			dst = append(dst, `,"overriddenStatus":`...)
			dst = appendJSONString(dst, it.OverriddenStatus)
		}
		if it.Status != "" {
			dst = append(dst, `,"status":`...)
			dst = appendJSONString(dst, it.Status)
		}
		if len(it.Instance) > 0 {
			dst = append(dst, `,"instanceInfo":`...)
			dst = append(dst, it.Instance...)
		}
		dst = append(dst, `,"action":`...)
		dst = appendJSONString(dst, string(it.Action))
		if it.TraceParent != "" {
			dst = append(dst, `,"traceparent":`...)
			dst = appendJSONString(dst, it.TraceParent)
		}
		if it.StatusVersion != 0 {
			dst = append(dst, `,"statusVersion":`...)
			dst = strconv.AppendInt(dst, it.StatusVersion, 10)
		}
		if len(it.Payload) > 0 {
			dst = append(dst, `,"payload":"`...)
			dst = base64.StdEncoding.AppendEncode(dst, it.Payload)
			dst = append(dst, '"')
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

// flexInt accepts a number or a numeric string.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	if s == "" || s == "null" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want an integer, got %s", b)
	}
	*f = flexInt(v)
	return nil
}

type wireItem struct {
	AppName            string          `json:"appName"`
	ID                 string          `json:"id"`
	LastDirtyTimestamp flexInt         `json:"lastDirtyTimestamp"`
	OverriddenStatus   string          `json:"overriddenStatus"`
	Status             string          `json:"status"`
	InstanceInfo       json.RawMessage `json:"instanceInfo"`
	Action             string          `json:"action"`
	TraceParent        string          `json:"traceparent"`
	Payload            []byte          `json:"payload"`
	StatusVersion      flexInt         `json:"statusVersion"`
}

// The field names of the batch documents, matched exactly as Jackson does: encoding/json alone
// would also take {"APPNAME":...} for appName. The instanceInfo is checked by its own decoder.
var (
	listSchema     = exactjson.Schema{"replicationList": exactjson.FieldsOf(wireItem{})}
	responseSchema = exactjson.Schema{"responseList": exactjson.FieldsOf(wireResult{})}
)

// DecodeReplicationList parses a ReplicationList. Each item's instanceInfo is kept as raw JSON in
// Item.Instance. Field names match exactly (case-sensitively), as in Eureka; a member whose name
// differs from a field's only in case is ignored, like any unknown member.
func DecodeReplicationList(data []byte) ([]sdk.Item, error) {
	var w struct {
		List *[]wireItem `json:"replicationList"`
	}
	if err := json.Unmarshal(exactjson.Exact(data, listSchema), &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrParse, err)
	}
	if w.List == nil {
		return nil, fmt.Errorf(`%w: missing "replicationList"`, ErrParse)
	}
	items := make([]sdk.Item, len(*w.List))
	for i, wi := range *w.List {
		it := sdk.Item{
			Action:             sdk.Action(wi.Action),
			App:                wi.AppName,
			ID:                 wi.ID,
			LastDirtyTimestamp: int64(wi.LastDirtyTimestamp),
			Status:             wi.Status,
			OverriddenStatus:   wi.OverriddenStatus,
			TraceParent:        wi.TraceParent,
			Payload:            wi.Payload,
			StatusVersion:      int64(wi.StatusVersion),
		}
		if raw := bytes.TrimSpace(wi.InstanceInfo); len(raw) > 0 && string(raw) != "null" {
			it.Instance = append([]byte(nil), raw...)
		}
		items[i] = it
	}
	return items, nil
}

// AppendReplicationListResponse appends {"responseList":[{"statusCode":200},...]} with
// responseEntity as the bare instance when set.
func AppendReplicationListResponse(dst []byte, results []sdk.ItemResult) []byte {
	dst = append(dst, `{"responseList":[`...)
	for i, r := range results {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"statusCode":`...)
		dst = strconv.AppendInt(dst, int64(r.StatusCode), 10)
		if len(r.Entity) > 0 {
			dst = append(dst, `,"responseEntity":`...)
			dst = append(dst, r.Entity...)
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

type wireResult struct {
	StatusCode     int             `json:"statusCode"`
	ResponseEntity json.RawMessage `json:"responseEntity"`
}

// DecodeReplicationListResponse parses a ReplicationListResponse. Field names match exactly, as
// in DecodeReplicationList.
func DecodeReplicationListResponse(data []byte) ([]sdk.ItemResult, error) {
	var w struct {
		List *[]wireResult `json:"responseList"`
	}
	if err := json.Unmarshal(exactjson.Exact(data, responseSchema), &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrParse, err)
	}
	if w.List == nil {
		return nil, fmt.Errorf(`%w: missing "responseList"`, ErrParse)
	}
	out := make([]sdk.ItemResult, len(*w.List))
	for i, r := range *w.List {
		out[i].StatusCode = r.StatusCode
		if raw := bytes.TrimSpace(r.ResponseEntity); len(raw) > 0 && string(raw) != "null" {
			out[i].Entity = append([]byte(nil), raw...)
		}
	}
	return out, nil
}
