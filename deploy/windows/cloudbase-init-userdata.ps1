#ps1_sysnative
# cloudbase-init user data (KubeVirt cloudInitNoCloud; deploy/windows/vm-cloudbase-init-patch.yaml):
# at first boot, as SYSTEM in 64-bit PowerShell, find the CD-ROM drive that KubeVirt built from the
# ConfigMap kubevirt-vss-guest-report and run Install-VssGuestReportFromDisk.ps1 from it. The user
# data holds no secret: the token comes from its own drive (the Secret kubevirt-vss-guest-report-token).
Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$ScriptName = 'Install-VssGuestReportFromDisk.ps1'
$CdRomDriveType = 5
$deadline = (Get-Date).AddMinutes(2)

$bootstrap = $null
while ($null -eq $bootstrap) {
    foreach ($volume in @(Get-CimInstance -ClassName Win32_Volume -Filter "DriveType = $CdRomDriveType")) {
        if ([string]::IsNullOrEmpty($volume.Name)) { continue }
        $candidate = Join-Path $volume.Name $ScriptName
        if (Test-Path -LiteralPath $candidate -PathType Leaf) { $bootstrap = $candidate; break }
    }
    if ($null -ne $bootstrap) { break }
    if ((Get-Date) -ge $deadline) { throw "no CD-ROM drive holds ${ScriptName}: attach the ConfigMap kubevirt-vss-guest-report" }
    Start-Sleep -Seconds 5
}

# A child process, so that the execution policy of cloudbase-init's own PowerShell does not matter.
$powershell = Join-Path $PSHOME 'powershell.exe'
& $powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -File $bootstrap
exit $LASTEXITCODE
