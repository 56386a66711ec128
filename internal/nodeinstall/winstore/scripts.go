package winstore

// The PowerShell scripts. They are constants: values arrive only through
// the environment variables below (and the PFX on standard input), never as
// script text. Windows PowerShell 5.1 (every supported Windows Server) runs
// them; IIS bindings need the WebAdministration module (IIS management
// scripts and tools).

const (
	envStore    = "CERTFERRY_STORE"        // "LocalMachine\My"
	envThumb    = "CERTFERRY_THUMBPRINT"   // 40 hex digits, upper case
	envSite     = "CERTFERRY_SITE"         // IIS site name
	envPassword = "CERTFERRY_PFX_PASSWORD" // the PFX's password
)

// prelude stops at the first error and reports it on the last line.
const prelude = `$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
function Done($obj) { Write-Output ('CERTFERRY_WINSTORE ' + (ConvertTo-Json -Compress -InputObject $obj)) }
function Open-Store([string]$spec, [string]$mode) {
  $parts = $spec -split '\\', 2
  $loc = [System.Security.Cryptography.X509Certificates.StoreLocation]$parts[0]
  $s = New-Object System.Security.Cryptography.X509Certificates.X509Store($parts[1], $loc)
  $s.Open([System.Security.Cryptography.X509Certificates.OpenFlags]$mode)
  return $s
}
function Find-Site {
  Import-Module WebAdministration
  $site = @(Get-Website | Where-Object { $_.Name -eq $env:CERTFERRY_SITE })
  if ($site.Count -ne 1) { throw ('IIS site not found: ' + $env:CERTFERRY_SITE) }
  return $site[0]
}
function Https-Binding {
  return @(Get-WebBinding -Name $env:CERTFERRY_SITE -Protocol https) | Select-Object -First 1
}
try {
`

const epilogue = `
} catch {
  Write-Output ('CERTFERRY_WINSTORE_ERROR ' + ($_.Exception.Message -replace '\s+', ' '))
  exit 1
}
`

// importScript reads the base64 PFX from standard input, adds the leaf (the
// one certificate with a key; key persisted, not exportable) to the store
// and the intermediates (not self-signed) to the same location's CA store.
// Roots are never added: trust is not certferry's to change.
const importScript = prelude + `
  $bytes = [Convert]::FromBase64String([Console]::In.ReadToEnd().Trim())
  $loc = ($env:CERTFERRY_STORE -split '\\', 2)[0]
  if ($loc -eq 'LocalMachine') {
    $flags = [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]'MachineKeySet, PersistKeySet'
  } else {
    $flags = [System.Security.Cryptography.X509Certificates.X509KeyStorageFlags]'UserKeySet, PersistKeySet'
  }
  $col = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2Collection
  $col.Import($bytes, $env:CERTFERRY_PFX_PASSWORD, $flags)
  $leaf = @($col | Where-Object { $_.HasPrivateKey })
  if ($leaf.Count -ne 1) { throw ('the PFX holds ' + $leaf.Count + ' certificates with a private key, want 1') }
  $leaf = $leaf[0]
  $store = Open-Store $env:CERTFERRY_STORE 'ReadWrite'
  try { $store.Add($leaf) } finally { $store.Close() }
  $ca = Open-Store ($loc + '\CA') 'ReadWrite'
  try {
    foreach ($c in $col) { if (-not $c.HasPrivateKey -and $c.Subject -ne $c.Issuer) { $ca.Add($c) } }
  } finally { $ca.Close() }
  Done @{ thumbprint = $leaf.Thumbprint }
` + epilogue

const hasScript = prelude + `
  $store = Open-Store $env:CERTFERRY_STORE 'ReadOnly'
  try {
    $found = $store.Certificates.Find('FindByThumbprint', $env:CERTFERRY_THUMBPRINT, $false)
  } finally { $store.Close() }
  Done @{ present = ($found.Count -gt 0) }
` + epilogue

const removeScript = prelude + `
  $store = Open-Store $env:CERTFERRY_STORE 'ReadWrite'
  try {
    foreach ($c in @($store.Certificates.Find('FindByThumbprint', $env:CERTFERRY_THUMBPRINT, $false))) { $store.Remove($c) }
  } finally { $store.Close() }
  Done @{}
` + epilogue

// bindingScript: the certificate of the site's first https binding
// (certificateHash and certificateStoreName of Get-WebBinding).
const bindingScript = prelude + `
  $null = Find-Site
  $b = Https-Binding
  if (-not $b -or -not $b.certificateHash) {
    Done @{ thumbprint = ''; store = '' }
  } else {
    Done @{ thumbprint = [string]$b.certificateHash; store = [string]$b.certificateStoreName }
  }
` + epilogue

// bindScript points the site's first https binding at the certificate with
// AddSslCertificate (which keeps the binding's SNI flags). Where http.sys
// refuses to add over an existing certificate, it removes the old one and
// adds the new one, putting the old one back if that fails. It never
// creates a binding: address, port and host name are the operator's.
const bindScript = prelude + `
  $null = Find-Site
  $b = Https-Binding
  if (-not $b) { throw ('IIS site has no https binding: ' + $env:CERTFERRY_SITE) }
  $storeName = ($env:CERTFERRY_STORE -split '\\', 2)[1]
  $old = [string]$b.certificateHash
  $oldStore = [string]$b.certificateStoreName
  if ($old -ne $env:CERTFERRY_THUMBPRINT) {
    try {
      $b.AddSslCertificate($env:CERTFERRY_THUMBPRINT, $storeName)
    } catch {
      if (-not $old) { throw }
      $first = $_
      $b.RemoveSslCertificate()
      try {
        $b.AddSslCertificate($env:CERTFERRY_THUMBPRINT, $storeName)
      } catch {
        try { $b.AddSslCertificate($old, $oldStore) } catch { }
        throw $first
      }
    }
  }
  $now = Https-Binding
  if ([string]$now.certificateHash -ne $env:CERTFERRY_THUMBPRINT) { throw 'the https binding does not hold the new certificate' }
  Done @{}
` + epilogue
