#Requires -Version 5.1
<#
.SYNOPSIS
    Sends a read-only VSS health report of this Windows guest to kubevirt-vss-exporter.

.DESCRIPTION
    Collects the raw output of "vssadmin list writers", "vssadmin list providers" and
    "vssadmin list shadowstorage", the status and start type of the services VSS, SWPRV,
    "QEMU Guest Agent" and "QEMU Guest Agent VSS Provider", free and total space of every fixed
    volume, the qemu-ga file version, the computer name and a UTC timestamp, and POSTs them as one
    JSON document (schema: exporter/schemas/guest-report-v1.json) to the exporter.

    The script only reads: it starts no service, changes no setting and deletes nothing. The only
    thing it writes is an entry in the Application event log (source "kubevirt-vss-exporter", created
    by Install-VssGuestReport.ps1) when a report cannot be delivered.

.PARAMETER ExporterUrl
    Base URL of the exporter's guest-report listener (port 9746), e.g.
    http://kubevirt-vss-exporter-guest-reports.kubevirt-vss-exporter.svc.cluster.local:9746. The path
    /api/v1/guest-reports is appended unless the URL already ends with it. Defaults to the URL stored
    by the installer in %ProgramData%\kubevirt-vss-exporter\config.json.

.PARAMETER TokenFile
    File holding the bearer token. Defaults to the token file stored by the installer.

.PARAMETER DryRun
    Print the JSON report and exit without sending it. Needs neither URL nor token.

.EXAMPLE
    powershell.exe -NoProfile -ExecutionPolicy Bypass -File .\Send-VssGuestReport.ps1 -DryRun
#>
[CmdletBinding()]
param(
    [string] $ExporterUrl,
    [string] $TokenFile,
    [switch] $DryRun,
    [ValidateRange(1, 120)] [int] $TimeoutSec = 15,
    [ValidateRange(1, 10)] [int] $MaxAttempts = 3,
    [ValidateRange(5, 300)] [int] $VssadminTimeoutSec = 45
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$ReporterVersion = '1.0.0'
$SchemaVersion = 1
$ReportPath = '/api/v1/guest-reports'
$ConfigDir = Join-Path $env:ProgramData 'kubevirt-vss-exporter'
$ConfigFile = Join-Path $ConfigDir 'config.json'
$DefaultTokenFile = Join-Path $ConfigDir 'token'
$EventSource = 'kubevirt-vss-exporter'
# Bounds of exporter/schemas/guest-report-v1.json; the exporter refuses bodies over 256 KiB.
$MaxVssadminChars = 49152
$MaxVolumes = 64
$ServiceNames = @('VSS', 'SWPRV', 'QEMU Guest Agent', 'QEMU Guest Agent VSS Provider')
# Longest Retry-After waited for within one run; a longer one is left to the next scheduled run.
$MaxRetryWaitSec = 60

function Limit-Text {
    param([string] $Text, [int] $MaxLength)
    if ($Text.Length -le $MaxLength) { return $Text }
    return $Text.Substring(0, $MaxLength)
}

function Invoke-VssadminList {
    # Runs only "vssadmin list <subject>", which reads state; the subject set is closed on purpose.
    param([Parameter(Mandatory)] [ValidateSet('writers', 'providers', 'shadowstorage')] [string] $Subject)
    $startInfo = New-Object System.Diagnostics.ProcessStartInfo
    $startInfo.FileName = Join-Path $env:SystemRoot 'System32\vssadmin.exe'
    $startInfo.Arguments = "list $Subject"
    $startInfo.UseShellExecute = $false
    $startInfo.CreateNoWindow = $true
    $startInfo.RedirectStandardOutput = $true
    $startInfo.RedirectStandardError = $true
    # Console programs write in the OEM code page when redirected. The exporter keys on bracketed
    # numbers and GUIDs, so a mis-decoded localized label does no harm.
    $oem = [System.Text.Encoding]::GetEncoding([System.Globalization.CultureInfo]::CurrentCulture.TextInfo.OEMCodePage)
    $startInfo.StandardOutputEncoding = $oem
    $startInfo.StandardErrorEncoding = $oem
    try {
        $process = [System.Diagnostics.Process]::Start($startInfo)
    } catch {
        return "vssadmin list $Subject could not be started: $($_.Exception.Message)"
    }
    $stdout = $process.StandardOutput.ReadToEndAsync()
    $stderr = $process.StandardError.ReadToEndAsync()
    $note = ''
    if (-not $process.WaitForExit($VssadminTimeoutSec * 1000)) {
        # A hung vssadmin (VSS busy or wedged) must not hold the scheduled task: end our own child.
        try { $process.Kill() } catch { }
        [void] $process.WaitForExit(5000)
        $note = "`r`n(vssadmin list $Subject did not finish within $VssadminTimeoutSec s)`r`n"
    }
    $text = $stdout.Result + $stderr.Result + $note
    return Limit-Text -Text $text -MaxLength $MaxVssadminChars
}

function ConvertTo-ServiceStatus {
    param([string] $State)
    # Win32_Service says "Start Pending"; Get-Service says "StartPending". Report the latter.
    if ([string]::IsNullOrEmpty($State)) { return $null }
    return Limit-Text -Text ($State -replace '\s', '') -MaxLength 32
}

function ConvertTo-StartType {
    param([string] $StartMode)
    if ([string]::IsNullOrEmpty($StartMode)) { return $null }
    if ($StartMode -eq 'Auto') { return 'Automatic' }
    return Limit-Text -Text $StartMode -MaxLength 32
}

function Get-ServiceEntry {
    param([Parameter(Mandatory)] [string] $Name)
    $found = @()
    $serviceName = $null
    $status = $null
    $startType = $null
    try {
        $found = @(Get-CimInstance -ClassName Win32_Service -Filter "Name='$Name' OR DisplayName='$Name'")
        if ($found.Count -gt 0) {
            $serviceName = [string] $found[0].Name
            $status = ConvertTo-ServiceStatus -State ([string] $found[0].State)
            $startType = ConvertTo-StartType -StartMode ([string] $found[0].StartMode)
        }
    } catch {
        # WMI can be broken on its own; the service controller still answers.
        $found = @(Get-Service -Name $Name -ErrorAction SilentlyContinue)
        if ($found.Count -eq 0) {
            $found = @(Get-Service -DisplayName $Name -ErrorAction SilentlyContinue)
        }
        if ($found.Count -gt 0) {
            $serviceName = [string] $found[0].Name
            $status = ConvertTo-ServiceStatus -State ([string] $found[0].Status)
            $startType = ConvertTo-StartType -StartMode ([string] $found[0].StartType)
        }
    }
    if ($found.Count -eq 0) {
        return [ordered]@{
            name    = $Name
            present = $false
        }
    }
    return [ordered]@{
        name        = $Name
        present     = $true
        serviceName = $serviceName
        status      = $status
        startType   = $startType
    }
}

function Get-VolumeEntries {
    # The Windows directory's volume is the one that matters for VSS free space (Win32_Volume calls it
    # BootVolume; its SystemVolume is the boot loader's partition).
    $windowsDrive = ([System.IO.Path]::GetPathRoot($env:SystemRoot)).TrimEnd('\')
    $volumes = @(Get-CimInstance -ClassName Win32_Volume -Filter 'DriveType=3' | Select-Object -First $MaxVolumes)
    foreach ($volume in $volumes) {
        $letter = $null
        if ($volume.DriveLetter) { $letter = [string] $volume.DriveLetter }
        $fileSystem = $null
        if ($volume.FileSystem) { $fileSystem = Limit-Text -Text ([string] $volume.FileSystem) -MaxLength 32 }
        $free = $null
        if ($null -ne $volume.FreeSpace) { $free = [uint64] $volume.FreeSpace }
        $total = $null
        if ($null -ne $volume.Capacity) { $total = [uint64] $volume.Capacity }
        $isSystem = [bool] $volume.BootVolume -or ($null -ne $letter -and $letter -eq $windowsDrive)
        [ordered]@{
            path        = Limit-Text -Text ([string] $volume.DeviceID) -MaxLength 512
            driveLetter = $letter
            fileSystem  = $fileSystem
            freeBytes   = $free
            totalBytes  = $total
            isSystem    = $isSystem
        }
    }
}

function Get-QgaVersion {
    $candidates = New-Object System.Collections.Generic.List[string]
    try {
        $agent = @(Get-CimInstance -ClassName Win32_Service -Filter "Name='QEMU-GA' OR DisplayName='QEMU Guest Agent'")
        if ($agent.Count -gt 0 -and $agent[0].PathName -match '^\s*"?([^"]+?\.exe)') {
            $candidates.Add($Matches[1])
        }
    } catch { }
    foreach ($root in @($env:ProgramFiles, ${env:ProgramFiles(x86)})) {
        if ($root) {
            $candidates.Add((Join-Path $root 'Qemu-ga\qemu-ga.exe'))
            $candidates.Add((Join-Path $root 'QEMU Guest Agent\qemu-ga.exe'))
            $candidates.Add((Join-Path $root 'Virtio-Win\qemu-ga\qemu-ga.exe'))
        }
    }
    foreach ($path in $candidates) {
        if (Test-Path -LiteralPath $path -PathType Leaf) {
            $info = (Get-Item -LiteralPath $path).VersionInfo
            $version = $info.FileVersion
            if ([string]::IsNullOrWhiteSpace($version)) { $version = $info.ProductVersion }
            if (-not [string]::IsNullOrWhiteSpace($version)) {
                return Limit-Text -Text $version.Trim() -MaxLength 64
            }
        }
    }
    return $null
}

function New-GuestReport {
    $writers = Invoke-VssadminList -Subject 'writers'
    $providers = Invoke-VssadminList -Subject 'providers'
    $shadowStorage = Invoke-VssadminList -Subject 'shadowstorage'
    $services = New-Object System.Collections.Generic.List[object]
    foreach ($name in $ServiceNames) { $services.Add((Get-ServiceEntry -Name $name)) }
    $volumes = New-Object System.Collections.Generic.List[object]
    try {
        foreach ($entry in @(Get-VolumeEntries)) { $volumes.Add($entry) }
    } catch {
        Write-Warning "fixed volumes could not be read: $($_.Exception.Message)"
    }
    $generatedAt = [DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", [System.Globalization.CultureInfo]::InvariantCulture)
    return [ordered]@{
        schemaVersion   = $SchemaVersion
        reporterVersion = $ReporterVersion
        hostname        = Limit-Text -Text $env:COMPUTERNAME -MaxLength 255
        generatedAt     = $generatedAt
        qgaVersion      = Get-QgaVersion
        vssadmin        = [ordered]@{
            writers       = $writers
            providers     = $providers
            shadowStorage = $shadowStorage
        }
        # Plain arrays from ToArray(): Windows PowerShell 5.1 can serialise an array that carries a
        # PSObject wrapper as {"value": [...], "Count": n} instead of a JSON array.
        services        = $services.ToArray()
        volumes         = $volumes.ToArray()
    }
}

function Get-Setting {
    param([AllowNull()] $Config, [string] $Name)
    if ($null -eq $Config) { return $null }
    $property = $Config.PSObject.Properties[$Name]
    if ($null -eq $property) { return $null }
    return [string] $property.Value
}

function Resolve-ReportUri {
    param([Parameter(Mandatory)] [string] $BaseUrl)
    $trimmed = $BaseUrl.Trim().TrimEnd('/')
    if (-not $trimmed.EndsWith($ReportPath)) { $trimmed = $trimmed + $ReportPath }
    $uri = $null
    if (-not [Uri]::TryCreate($trimmed, [UriKind]::Absolute, [ref] $uri) -or $uri.Scheme -notin @('http', 'https')) {
        throw "exporter URL '$BaseUrl' is not an absolute http(s) URL"
    }
    return $uri
}

function Get-HttpStatus {
    param($ErrorRecord)
    $exception = $ErrorRecord.Exception
    if ($exception -is [System.Net.WebException] -and $null -ne $exception.Response) {
        return [int] ([System.Net.HttpWebResponse] $exception.Response).StatusCode
    }
    return 0
}

function Get-RetryAfterSeconds {
    param($ErrorRecord)
    $exception = $ErrorRecord.Exception
    if ($exception -is [System.Net.WebException] -and $null -ne $exception.Response) {
        $value = 0
        if ([int]::TryParse([string] $exception.Response.Headers['Retry-After'], [ref] $value) -and $value -gt 0) {
            return $value
        }
    }
    return 0
}

function Send-Report {
    param([Parameter(Mandatory)] [Uri] $Uri, [Parameter(Mandatory)] [string] $Token, [Parameter(Mandatory)] [byte[]] $Body)
    $headers = @{ Authorization = "Bearer $Token" }
    $failure = ''
    for ($attempt = 1; $attempt -le $MaxAttempts; $attempt++) {
        try {
            $response = Invoke-WebRequest -Uri $Uri -Method Post -Body $Body -Headers $headers `
                -ContentType 'application/json; charset=utf-8' -TimeoutSec $TimeoutSec -UseBasicParsing
            Write-Verbose "guest report accepted by $Uri (HTTP $($response.StatusCode))"
            return
        } catch {
            $status = Get-HttpStatus -ErrorRecord $_
            $failure = "attempt ${attempt}: HTTP $status $($_.Exception.Message)"
            Write-Verbose $failure
            # 401, 403, 400 and 413 will not change by sending the same report again.
            if ($status -ge 400 -and $status -lt 500 -and $status -ne 429) { break }
            if ($attempt -lt $MaxAttempts) {
                $delay = Get-RetryAfterSeconds -ErrorRecord $_
                if ($delay -gt $MaxRetryWaitSec) {
                    # 503 while the exporter lists the fleet: sending sooner than asked only adds load.
                    $failure = "$failure; the exporter asked to retry after $delay s, left to the next run"
                    break
                }
                if ($delay -le 0) { $delay = [math]::Pow(2, $attempt) + (Get-Random -Minimum 0.0 -Maximum 1.0) }
                Start-Sleep -Milliseconds ([int] ($delay * 1000))
            }
        }
    }
    throw "guest report not delivered to $Uri; last $failure"
}

function Write-ReportEvent {
    param([Parameter(Mandatory)] [string] $Message, [int] $EventId = 1001)
    try {
        if ([System.Diagnostics.EventLog]::SourceExists($EventSource)) {
            Write-EventLog -LogName Application -Source $EventSource -EventId $EventId -EntryType Warning -Message $Message
        }
    } catch {
        Write-Verbose "event log entry not written: $($_.Exception.Message)"
    }
}

try {
    $report = New-GuestReport
    if ($DryRun) {
        ConvertTo-Json -InputObject $report -Depth 6
        return
    }
    $config = $null
    if (Test-Path -LiteralPath $ConfigFile -PathType Leaf) {
        $config = Get-Content -LiteralPath $ConfigFile -Raw | ConvertFrom-Json
    }
    $url = $ExporterUrl
    if ([string]::IsNullOrWhiteSpace($url)) { $url = Get-Setting -Config $config -Name 'exporterUrl' }
    if ([string]::IsNullOrWhiteSpace($url)) { throw "no exporter URL: pass -ExporterUrl or run Install-VssGuestReport.ps1" }
    $tokenPath = $TokenFile
    if ([string]::IsNullOrWhiteSpace($tokenPath)) { $tokenPath = Get-Setting -Config $config -Name 'tokenFile' }
    if ([string]::IsNullOrWhiteSpace($tokenPath)) { $tokenPath = $DefaultTokenFile }
    $token = ([System.IO.File]::ReadAllText($tokenPath)).Trim()
    if ([string]::IsNullOrEmpty($token)) { throw "token file '$tokenPath' is empty" }

    # Windows PowerShell 5.1 may default to TLS 1.0 for https; this affects this process only.
    [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
    $json = ConvertTo-Json -InputObject $report -Depth 6 -Compress
    $body = (New-Object System.Text.UTF8Encoding $false).GetBytes($json)
    Send-Report -Uri (Resolve-ReportUri -BaseUrl $url) -Token $token -Body $body
} catch {
    $message = "kubevirt-vss-exporter guest report failed: $($_.Exception.Message)"
    Write-ReportEvent -Message $message
    Write-Error -Message $message -ErrorAction Continue
    exit 1
}
