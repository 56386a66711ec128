package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// lambdaAPI is the part of the Lambda client the Invoker calls.
type lambdaAPI interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

var _ lambdaAPI = (*lambda.Client)(nil)

// Invoker runs a check in the probe function (production: the handshakes
// leave from the function's network, optionally inside a VPC).
type Invoker struct {
	api      lambdaAPI
	function string
}

// NewInvoker returns an Invoker of the named function (name or ARN).
func NewInvoker(api lambdaAPI, function string) *Invoker {
	return &Invoker{api: api, function: function}
}

// invokeMargin is left of the caller's time for reading the answer.
const invokeMargin = 2 * time.Second

// Probe invokes the probe function synchronously ("Invoke", AWS Lambda
// API Reference: InvocationType RequestResponse "keeps the connection open
// until the function returns a response"; a function error is reported in
// the FunctionError header with status 200, the error object as payload).
// The request's budget is the caller's remaining time less a margin.
func (i *Invoker) Probe(ctx context.Context, req Request) (Response, error) {
	if dl, ok := ctx.Deadline(); ok && req.BudgetMillis == 0 {
		left := time.Until(dl) - invokeMargin
		if left <= 0 {
			return Response{}, fmt.Errorf("invoke probe function %s: no time left before the caller's deadline", i.function)
		}
		req.BudgetMillis = left.Milliseconds()
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return Response{}, fmt.Errorf("encode probe request: %w", err)
	}
	out, err := i.api.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(i.function),
		InvocationType: lambdatypes.InvocationTypeRequestResponse,
		Payload:        payload,
	})
	if err != nil {
		return Response{}, fmt.Errorf("invoke probe function %s: %w", i.function, err)
	}
	if out.FunctionError != nil {
		var fe struct {
			Message string `json:"errorMessage"`
			Type    string `json:"errorType"`
		}
		_ = json.Unmarshal(out.Payload, &fe)
		return Response{}, fmt.Errorf("probe function %s failed (%s): %s %s", i.function, aws.ToString(out.FunctionError), fe.Type, clean(fe.Message))
	}
	var resp Response
	if err := json.Unmarshal(out.Payload, &resp); err != nil {
		return Response{}, fmt.Errorf("decode answer of probe function %s: %w", i.function, err)
	}
	if len(resp.Results) != len(req.Targets) {
		return Response{}, fmt.Errorf("probe function %s answered %d results for %d targets", i.function, len(resp.Results), len(req.Targets))
	}
	return resp, nil
}
