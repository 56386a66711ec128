package publish

// AttrOf exposes each platform's attribute name to the external tests
// (resource_integration_test.go is package publish_test so that it can use the rig in
// internal/testkit, which imports this package through internal/agentrun).
var AttrOf = attrOf
