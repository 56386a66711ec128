package document

// docPath is certferry's SSM document, for the tests of this package.
const docPath = "../../ssm-documents/certferry-install.yaml"
