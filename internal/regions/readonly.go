package regions

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// ErrReadOnly is the answer of every write through ReadOnly.
var ErrReadOnly = errors.New("certferry status across accounts and regions reads only")

// ReadOnly is a DynamoDB client for inventory.NewStore whose reads go to r
// and whose writes fail with ErrReadOnly: reading other accounts'
// inventories can never change them.
func ReadOnly(r DynamoDBAPI) *ReadOnlyDynamoDB { return &ReadOnlyDynamoDB{DynamoDBAPI: r} }

// ReadOnlyDynamoDB is ReadOnly's client.
type ReadOnlyDynamoDB struct{ DynamoDBAPI }

// PutItem fails with ErrReadOnly.
func (ReadOnlyDynamoDB) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return nil, ErrReadOnly
}

// UpdateItem fails with ErrReadOnly.
func (ReadOnlyDynamoDB) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return nil, ErrReadOnly
}

// DeleteItem fails with ErrReadOnly.
func (ReadOnlyDynamoDB) DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return nil, ErrReadOnly
}

// TransactWriteItems fails with ErrReadOnly.
func (ReadOnlyDynamoDB) TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return nil, ErrReadOnly
}

// BatchWriteItem fails with ErrReadOnly.
func (ReadOnlyDynamoDB) BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return nil, ErrReadOnly
}
