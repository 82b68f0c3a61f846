<#
.SYNOPSIS
Build the ai-worker images, tag them with the git revision, and optionally push them to ECR (PowerShell twin of
scripts/build.sh: same options, same tags, same refusals).

.EXAMPLE
scripts/build.ps1 cpu
scripts/build.ps1 both -Push -Account 123456789012 -Region ap-northeast-2
scripts/build.ps1 cpu -MultiArch -Account 123456789012 -Region ap-northeast-2
scripts/build.ps1 gpu -DryRun

.NOTES
The GPU image is linux/amd64 only (its environment is solved for linux-64). -Push builds the cpu image for
linux/amd64 whatever this machine is (the stack's default CpuArchitecture, X86_64). -MultiArch (cpu only) builds
linux/amd64 + linux/arm64 with docker buildx and pushes, since a multi-platform result cannot be loaded locally.
$env:DOCKER names the client (default: docker). Extra arguments after the options go to `docker build`.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true, Position = 0)]
    [ValidateSet("cpu", "gpu", "both")]
    [string] $Target,
    [switch] $Push,
    [switch] $MultiArch,
    [string] $Account = $env:AWS_ACCOUNT_ID,
    [string] $Region = $env:AWS_REGION,
    [string] $EnvStage = "",
    [switch] $DryRun,
    [Parameter(ValueFromRemainingArguments = $true)]
    [string[]] $Extra = @()
)
$ErrorActionPreference = "Stop"

$Repo = Split-Path -Parent $PSScriptRoot
$Docker = if ($env:DOCKER) { $env:DOCKER } else { "docker" }
$ModelDir = "build/models/embedding"  # the Dockerfiles' default EMBEDDING_MODEL_DIR
$CpuPlatforms = "linux/amd64,linux/arm64"
$CpuPushPlatform = "linux/amd64"  # = deploy/ai-worker.yaml's default CpuArchitecture (X86_64)
$GpuPlatform = "linux/amd64"

function Fail([string] $Message) {
    Write-Error "build.ps1: $Message" -ErrorAction Continue
    exit 2
}

if ($MultiArch) { $Push = $true }
if ($MultiArch -and $Target -ne "cpu") { Fail "-MultiArch is for the cpu image only (the gpu image is amd64)" }
if ($EnvStage -and $Target -eq "both") { Fail "-EnvStage provides one environment: build cpu or gpu with it" }
if ($Push -and (-not $Account -or -not $Region)) {
    Fail "-Push needs -Account and -Region (or AWS_ACCOUNT_ID and AWS_REGION)"
}

Set-Location $Repo
if (-not $EnvStage -and -not (Test-Path "pixi.lock")) {
    Fail ("pixi.lock is missing. The images install the locked environments only: run ``pixi lock`` on a machine " +
        "that reaches conda-forge and commit pixi.lock (or take the lock CI proposes as an artifact), then build again.")
}
if (-not (Test-Path $ModelDir)) {
    Fail ("$ModelDir is missing: put the sentence-transformers model to bake into the images there " +
        "(a directory written by SentenceTransformer.save(); see docs/deployment.md `"Building`").")
}

$Revision = (git rev-parse --short=12 HEAD 2>$null)
if (-not $Revision) { $Revision = "unversioned" }
# A build from uncommitted changes must never pass for the commit it started from.
if (git status --porcelain 2>$null) { $Revision = "$Revision-dirty" }
$Registry = "$Account.dkr.ecr.$Region.amazonaws.com"

function Invoke-Step([string[]] $Command) {
    if ($DryRun) { Write-Output ($Command -join " "); return }
    & $Command[0] $Command[1..($Command.Length - 1)]
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

if ($Push) {
    if ($DryRun) {
        Write-Output "aws ecr get-login-password --region $Region | $Docker login --username AWS --password-stdin $Registry"
    } else {
        aws ecr get-login-password --region $Region | & $Docker login --username AWS --password-stdin $Registry
        if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    }
}

function Build-Image([string] $EnvName) {
    $Image = "ai-worker-$EnvName"
    $Common = @("-f", "docker/$Image/Dockerfile", "--build-arg", "IMAGE_TAG=$Revision")
    if ($EnvStage) { $Common += @("--build-arg", "ENV_STAGE=$EnvStage") }
    if ($MultiArch) {
        Invoke-Step (@($Docker, "buildx", "build", "--platform", $CpuPlatforms) + $Common +
            @("-t", "$Registry/${Image}:$Revision", "--push") + $Extra + @("."))
        return
    }
    $Platform = if ($EnvName -eq "gpu") { @("--platform", $GpuPlatform) }
                elseif ($Push) { @("--platform", $CpuPushPlatform) }
                else { @() }
    $env:DOCKER_BUILDKIT = "1"
    Invoke-Step (@($Docker, "build") + $Platform + $Common +
        @("-t", "${Image}:$Revision", "-t", "${Image}:latest") + $Extra + @("."))
    if ($Push) {
        Invoke-Step @($Docker, "tag", "${Image}:$Revision", "$Registry/${Image}:$Revision")
        Invoke-Step @($Docker, "push", "$Registry/${Image}:$Revision")
    }
}

if ($Target -eq "both") { Build-Image "cpu"; Build-Image "gpu" } else { Build-Image $Target }
