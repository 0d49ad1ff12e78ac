
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'tollgate' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'tollgate'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'tollgate' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the control plane and gateway')
            [CompletionResult]::new('integrations', 'integrations', [CompletionResultType]::ParameterValue, 'Provider credentials')
            [CompletionResult]::new('configs', 'configs', [CompletionResultType]::ParameterValue, 'Routing configs (Portkey config JSON), versioned')
            [CompletionResult]::new('keys', 'keys', [CompletionResultType]::ParameterValue, 'API keys for the gateway and the admin API')
            [CompletionResult]::new('budgets', 'budgets', [CompletionResultType]::ParameterValue, 'Budgets: spend limits per key, workspace, integration, user or any metadata')
            [CompletionResult]::new('prompts', 'prompts', [CompletionResultType]::ParameterValue, 'Prompts: versioned Mustache templates, labels, partials; render and run them')
            [CompletionResult]::new('guardrails', 'guardrails', [CompletionResultType]::ParameterValue, 'Guardrails: checks on requests and answers (PII, regex, JSON schema, webhooks, ...); try one on a text with `guardrails test`')
            [CompletionResult]::new('workspaces', 'workspaces', [CompletionResultType]::ParameterValue, 'Workspaces: groups of keys sharing default metadata, config and allowed models')
            [CompletionResult]::new('cache', 'cache', [CompletionResultType]::ParameterValue, 'The response cache: stats, purge')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Request records: list, show, follow live, export')
            [CompletionResult]::new('trace', 'trace', [CompletionResultType]::ParameterValue, 'Traces: the spans of an agent run or a request, as a tree with timings')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'The audit log of admin changes: who changed what, when, from where')
            [CompletionResult]::new('usage', 'usage', [CompletionResultType]::ParameterValue, 'Requests, errors, tokens, cost and latency per model, provider, user, key or metadata value, over the last 7 days unless --since says otherwise')
            [CompletionResult]::new('chat', 'chat', [CompletionResultType]::ParameterValue, 'Send a chat request through the gateway and stream the answer')
            [CompletionResult]::new('context', 'context', [CompletionResultType]::ParameterValue, 'Named control planes (URL + stored credential)')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Store an API key for the current context, after checking it with the server')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Forget the stored API key of the current context')
            [CompletionResult]::new('whoami', 'whoami', [CompletionResultType]::ParameterValue, 'Show the calling key: name, type and scopes')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the control plane''s address, version and health, and who you are')
            [CompletionResult]::new('db', 'db', [CompletionResultType]::ParameterValue, 'The store itself: schema migrations, status, and copying SQLite into Postgres')
            [CompletionResult]::new('api', 'api', [CompletionResultType]::ParameterValue, 'Send a raw authenticated request to the control plane')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;serve' {
            [CompletionResult]::new('--addr', '--addr', [CompletionResultType]::ParameterName, 'Address to listen on')
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Where the SQLite database and master key live [default: $XDG_DATA_HOME/tollgate]')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'The Postgres database that holds everything, instead of SQLite in the data dir, e.g. postgres://tollgate@db.internal/tollgate (docs/postgres.md); empty means SQLite')
            [CompletionResult]::new('--retry-base-ms', '--retry-base-ms', [CompletionResultType]::ParameterName, 'The first retry of a failed upstream call waits about this long, doubling each time')
            [CompletionResult]::new('--log-bodies', '--log-bodies', [CompletionResultType]::ParameterName, 'Whether request records keep request and response bodies (a key can also turn it off)')
            [CompletionResult]::new('--log-retention', '--log-retention', [CompletionResultType]::ParameterName, 'Delete request records older than this, e.g. 30d [default: keep them all]')
            [CompletionResult]::new('--otlp-endpoint', '--otlp-endpoint', [CompletionResultType]::ParameterName, 'Send every request record as OpenTelemetry spans to this OTLP/HTTP receiver, e.g. http://127.0.0.1:4318')
            [CompletionResult]::new('--otlp-header', '--otlp-header', [CompletionResultType]::ParameterName, 'A header for the OTLP receiver, e.g. for its authentication (repeatable)')
            [CompletionResult]::new('--alert-webhook', '--alert-webhook', [CompletionResultType]::ParameterName, 'Post budget alerts (a budget''s alert threshold or its limit reached) to this URL as JSON')
            [CompletionResult]::new('--cache-size', '--cache-size', [CompletionResultType]::ParameterName, 'The most the response cache keeps in memory, in megabytes (the least recently used answers are evicted first)')
            [CompletionResult]::new('--record-queue-limit', '--record-queue-limit', [CompletionResultType]::ParameterName, 'While the database is unavailable, hold up to this many request records in memory and write them when it is back; later ones are dropped and counted (docs/postgres.md)')
            [CompletionResult]::new('--record-queue-mb', '--record-queue-mb', [CompletionResultType]::ParameterName, 'The most memory those held records may take, in megabytes (bodies included)')
            [CompletionResult]::new('--lb-seed', '--lb-seed', [CompletionResultType]::ParameterName, 'Seed load balancing''s random choices (for reproducible tests)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;integrations' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List integrations')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List integrations')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one integration (its key masked)')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Store a provider''s credential under a slug')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change an integration''s name, base URL, description or key')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete an integration')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Delete an integration')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;integrations;list' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;integrations;ls' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;integrations;get' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;integrations;create' {
            [CompletionResult]::new('--slug', '--slug', [CompletionResultType]::ParameterName, 'The slug requests use, as in `@openai-dev/gpt-4o`')
            [CompletionResult]::new('--provider', '--provider', [CompletionResultType]::ParameterName, 'The provider (`openai`, `anthropic`, `google`, `bedrock`, ...)')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'A display name [default: the slug]')
            [CompletionResult]::new('--base-url', '--base-url', [CompletionResultType]::ParameterName, 'Send requests to this base URL instead of the provider''s')
            [CompletionResult]::new('--description', '--description', [CompletionResultType]::ParameterName, 'description')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412')
            [CompletionResult]::new('--budget-type', '--budget-type', [CompletionResultType]::ParameterName, 'What the budget counts')
            [CompletionResult]::new('--period', '--period', [CompletionResultType]::ParameterName, 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]')
            [CompletionResult]::new('--alert', '--alert', [CompletionResultType]::ParameterName, 'Alert (webhook and event) when this percentage of the budget is used')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)')
            [CompletionResult]::new('--token-rate', '--token-rate', [CompletionResultType]::ParameterName, 'A token rate limit (input plus output), e.g. 100000/min (repeatable)')
            [CompletionResult]::new('--models', '--models', [CompletionResultType]::ParameterName, 'Models it may use: patterns such as ''@openai-dev/*'' or gpt-4o* (comma-separated, repeatable)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--api-key-stdin', '--api-key-stdin', [CompletionResultType]::ParameterName, 'Read the provider''s API key from standard input instead of a hidden prompt')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;integrations;update' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'name')
            [CompletionResult]::new('--base-url', '--base-url', [CompletionResultType]::ParameterName, 'A new base URL; an empty string removes it')
            [CompletionResult]::new('--description', '--description', [CompletionResultType]::ParameterName, 'description')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412')
            [CompletionResult]::new('--budget-type', '--budget-type', [CompletionResultType]::ParameterName, 'What the budget counts')
            [CompletionResult]::new('--period', '--period', [CompletionResultType]::ParameterName, 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]')
            [CompletionResult]::new('--alert', '--alert', [CompletionResultType]::ParameterName, 'Alert (webhook and event) when this percentage of the budget is used')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)')
            [CompletionResult]::new('--token-rate', '--token-rate', [CompletionResultType]::ParameterName, 'A token rate limit (input plus output), e.g. 100000/min (repeatable)')
            [CompletionResult]::new('--models', '--models', [CompletionResultType]::ParameterName, 'Models it may use: patterns such as ''@openai-dev/*'' or gpt-4o* (comma-separated, repeatable)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--api-key-stdin', '--api-key-stdin', [CompletionResultType]::ParameterName, 'Replace the API key with one read from standard input')
            [CompletionResult]::new('--prompt-api-key', '--prompt-api-key', [CompletionResultType]::ParameterName, 'Replace the API key with one typed at a hidden prompt')
            [CompletionResult]::new('--no-budget', '--no-budget', [CompletionResultType]::ParameterName, 'Remove the budget')
            [CompletionResult]::new('--no-rate-limits', '--no-rate-limits', [CompletionResultType]::ParameterName, 'Remove the rate limits')
            [CompletionResult]::new('--all-models', '--all-models', [CompletionResultType]::ParameterName, 'Allow every model again')
            [CompletionResult]::new('--reset-usage', '--reset-usage', [CompletionResultType]::ParameterName, 'Start the budget''s window over from zero')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;integrations;delete' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;integrations;rm' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;integrations;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List integrations')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one integration (its key masked)')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Store a provider''s credential under a slug')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change an integration''s name, base URL, description or key')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete an integration')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;integrations;help;list' {
            break
        }
        'tollgate;integrations;help;get' {
            break
        }
        'tollgate;integrations;help;create' {
            break
        }
        'tollgate;integrations;help;update' {
            break
        }
        'tollgate;integrations;help;delete' {
            break
        }
        'tollgate;integrations;help;help' {
            break
        }
        'tollgate;configs' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List saved configs')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List saved configs')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show a config (`-o yaml` output can be fed back to `apply`)')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Save a config from a YAML or JSON file')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a config; every update makes a new version')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a config and its versions')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Delete a config and its versions')
            [CompletionResult]::new('versions', 'versions', [CompletionResultType]::ParameterValue, 'List a config''s versions, newest first')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a config file without a server')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Create or update configs by name from a file, a folder of files, or stdin')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Show how a file differs from the saved config of the same name (exit 1 if it does)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;configs;list' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;configs;ls' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;configs;get' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;configs;create' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'name')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'The config as YAML or JSON, or `-` for standard input')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'The config as YAML or JSON, or `-` for standard input')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;configs;update' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'The new config as YAML or JSON, or `-` for standard input')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'The new config as YAML or JSON, or `-` for standard input')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'name')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;configs;delete' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;configs;rm' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;configs;versions' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;configs;validate' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'A YAML or JSON file, or `-` for standard input')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'A YAML or JSON file, or `-` for standard input')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;configs;apply' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'A file, a folder of .yaml/.yml/.json files, or `-` for standard input')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'A file, a folder of .yaml/.yml/.json files, or `-` for standard input')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show the plan without changing anything')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;configs;diff' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'A YAML or JSON file, or `-` for standard input')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'A YAML or JSON file, or `-` for standard input')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;configs;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List saved configs')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show a config (`-o yaml` output can be fed back to `apply`)')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Save a config from a YAML or JSON file')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a config; every update makes a new version')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a config and its versions')
            [CompletionResult]::new('versions', 'versions', [CompletionResultType]::ParameterValue, 'List a config''s versions, newest first')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a config file without a server')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Create or update configs by name from a file, a folder of files, or stdin')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Show how a file differs from the saved config of the same name (exit 1 if it does)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;configs;help;list' {
            break
        }
        'tollgate;configs;help;get' {
            break
        }
        'tollgate;configs;help;create' {
            break
        }
        'tollgate;configs;help;update' {
            break
        }
        'tollgate;configs;help;delete' {
            break
        }
        'tollgate;configs;help;versions' {
            break
        }
        'tollgate;configs;help;validate' {
            break
        }
        'tollgate;configs;help;apply' {
            break
        }
        'tollgate;configs;help;diff' {
            break
        }
        'tollgate;configs;help;help' {
            break
        }
        'tollgate;keys' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List keys (secrets masked)')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List keys (secrets masked)')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one key (secret masked)')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a key and print its secret, once')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a key''s name, scopes, defaults or expiry')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Revoke a key at once')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Revoke a key at once')
            [CompletionResult]::new('rotate', 'rotate', [CompletionResultType]::ParameterValue, 'Give a key a new secret; the old one keeps working for the grace period')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;keys;list' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;keys;ls' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;keys;get' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;keys;create' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'name')
            [CompletionResult]::new('--type', '--type', [CompletionResultType]::ParameterName, 'admin: manages the control plane; workspace: calls the gateway')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'The workspace (id or slug) a workspace key belongs to [default: ws-default]')
            [CompletionResult]::new('--scopes', '--scopes', [CompletionResultType]::ParameterName, 'Comma-separated scopes, e.g. configs.read,configs.list')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A saved config applied to requests that name none')
            [CompletionResult]::new('--metadata', '--metadata', [CompletionResultType]::ParameterName, 'Metadata added to every request made with the key (repeatable)')
            [CompletionResult]::new('--log-bodies', '--log-bodies', [CompletionResultType]::ParameterName, 'Whether the request log keeps this key''s request and response bodies')
            [CompletionResult]::new('--expires', '--expires', [CompletionResultType]::ParameterName, 'When the key stops working, from now: 30d, 12h, 1w')
            [CompletionResult]::new('--description', '--description', [CompletionResultType]::ParameterName, 'description')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412')
            [CompletionResult]::new('--budget-type', '--budget-type', [CompletionResultType]::ParameterName, 'What the budget counts')
            [CompletionResult]::new('--period', '--period', [CompletionResultType]::ParameterName, 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]')
            [CompletionResult]::new('--alert', '--alert', [CompletionResultType]::ParameterName, 'Alert (webhook and event) when this percentage of the budget is used')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)')
            [CompletionResult]::new('--token-rate', '--token-rate', [CompletionResultType]::ParameterName, 'A token rate limit (input plus output), e.g. 100000/min (repeatable)')
            [CompletionResult]::new('--models', '--models', [CompletionResultType]::ParameterName, 'Models it may use: patterns such as ''@openai-dev/*'' or gpt-4o* (comma-separated, repeatable)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;keys;update' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'name')
            [CompletionResult]::new('--scopes', '--scopes', [CompletionResultType]::ParameterName, 'Comma-separated scopes, e.g. configs.read,configs.list')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A saved config applied to requests that name none')
            [CompletionResult]::new('--metadata', '--metadata', [CompletionResultType]::ParameterName, 'Metadata added to every request made with the key (repeatable)')
            [CompletionResult]::new('--log-bodies', '--log-bodies', [CompletionResultType]::ParameterName, 'Whether the request log keeps this key''s request and response bodies')
            [CompletionResult]::new('--expires', '--expires', [CompletionResultType]::ParameterName, 'When the key stops working, from now: 30d, 12h, 1w')
            [CompletionResult]::new('--description', '--description', [CompletionResultType]::ParameterName, 'description')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412')
            [CompletionResult]::new('--budget-type', '--budget-type', [CompletionResultType]::ParameterName, 'What the budget counts')
            [CompletionResult]::new('--period', '--period', [CompletionResultType]::ParameterName, 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]')
            [CompletionResult]::new('--alert', '--alert', [CompletionResultType]::ParameterName, 'Alert (webhook and event) when this percentage of the budget is used')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)')
            [CompletionResult]::new('--token-rate', '--token-rate', [CompletionResultType]::ParameterName, 'A token rate limit (input plus output), e.g. 100000/min (repeatable)')
            [CompletionResult]::new('--models', '--models', [CompletionResultType]::ParameterName, 'Models it may use: patterns such as ''@openai-dev/*'' or gpt-4o* (comma-separated, repeatable)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('--no-budget', '--no-budget', [CompletionResultType]::ParameterName, 'Remove the budget')
            [CompletionResult]::new('--no-rate-limits', '--no-rate-limits', [CompletionResultType]::ParameterName, 'Remove the rate limits')
            [CompletionResult]::new('--all-models', '--all-models', [CompletionResultType]::ParameterName, 'Allow every model again')
            [CompletionResult]::new('--reset-usage', '--reset-usage', [CompletionResultType]::ParameterName, 'Start the budget''s window over from zero')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;keys;delete' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;keys;rm' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;keys;rotate' {
            [CompletionResult]::new('--grace', '--grace', [CompletionResultType]::ParameterName, 'How long the old secret keeps working, e.g. 24h [default: it stops at once]')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;keys;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List keys (secrets masked)')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one key (secret masked)')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a key and print its secret, once')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a key''s name, scopes, defaults or expiry')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Revoke a key at once')
            [CompletionResult]::new('rotate', 'rotate', [CompletionResultType]::ParameterValue, 'Give a key a new secret; the old one keeps working for the grace period')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;keys;help;list' {
            break
        }
        'tollgate;keys;help;get' {
            break
        }
        'tollgate;keys;help;create' {
            break
        }
        'tollgate;keys;help;update' {
            break
        }
        'tollgate;keys;help;delete' {
            break
        }
        'tollgate;keys;help;rotate' {
            break
        }
        'tollgate;keys;help;help' {
            break
        }
        'tollgate;budgets' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List budgets, including those of keys, workspaces and integrations')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List budgets, including those of keys, workspaces and integrations')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one budget')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a budget policy')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a budget''s limit, period, alert, conditions or status')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a budget')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Delete a budget')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Spend, reserved and remaining per budget and group value, and when each resets')
            [CompletionResult]::new('reset', 'reset', [CompletionResultType]::ParameterValue, 'Start a budget''s current window over from zero')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;budgets;list' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;budgets;ls' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;budgets;get' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;budgets;create' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'name')
            [CompletionResult]::new('--condition', '--condition', [CompletionResultType]::ParameterName, 'Only requests where KEY matches VALUE (`*` wildcards): api_key, workspace_id, provider (@slug), model, metadata.KEY (repeatable)')
            [CompletionResult]::new('--group-by', '--group-by', [CompletionResultType]::ParameterName, 'One counter per value of KEY: api_key, workspace_id, provider, model, metadata.KEY (repeatable)')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412')
            [CompletionResult]::new('--budget-type', '--budget-type', [CompletionResultType]::ParameterName, 'What the budget counts')
            [CompletionResult]::new('--period', '--period', [CompletionResultType]::ParameterName, 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]')
            [CompletionResult]::new('--alert', '--alert', [CompletionResultType]::ParameterName, 'Alert (webhook and event) when this percentage of the budget is used')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)')
            [CompletionResult]::new('--token-rate', '--token-rate', [CompletionResultType]::ParameterName, 'A token rate limit (input plus output), e.g. 100000/min (repeatable)')
            [CompletionResult]::new('--models', '--models', [CompletionResultType]::ParameterName, 'Models it may use: patterns such as ''@openai-dev/*'' or gpt-4o* (comma-separated, repeatable)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;budgets;update' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'name')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'A new limit')
            [CompletionResult]::new('--alert', '--alert', [CompletionResultType]::ParameterName, 'A new alert percentage')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'active, or archived (kept but not enforced)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;budgets;delete' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;budgets;rm' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;budgets;status' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;budgets;reset' {
            [CompletionResult]::new('--value', '--value', [CompletionResultType]::ParameterName, 'Only this group value, e.g. metadata._user=alice [default: all of them]')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;budgets;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List budgets, including those of keys, workspaces and integrations')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one budget')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a budget policy')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a budget''s limit, period, alert, conditions or status')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a budget')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Spend, reserved and remaining per budget and group value, and when each resets')
            [CompletionResult]::new('reset', 'reset', [CompletionResultType]::ParameterValue, 'Start a budget''s current window over from zero')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;budgets;help;list' {
            break
        }
        'tollgate;budgets;help;get' {
            break
        }
        'tollgate;budgets;help;create' {
            break
        }
        'tollgate;budgets;help;update' {
            break
        }
        'tollgate;budgets;help;delete' {
            break
        }
        'tollgate;budgets;help;status' {
            break
        }
        'tollgate;budgets;help;reset' {
            break
        }
        'tollgate;budgets;help;help' {
            break
        }
        'tollgate;prompts' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List prompts with their published and latest versions')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List prompts with their published and latest versions')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show a prompt: the published version, or the one asked for')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Save a prompt from a YAML or JSON file (name, model, parameters, messages, tools)')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Add a version to a prompt from a YAML or JSON file (nothing is overwritten)')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a prompt and all its versions')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Delete a prompt and all its versions')
            [CompletionResult]::new('versions', 'versions', [CompletionResultType]::ParameterValue, 'List a prompt''s versions, newest first, with their labels')
            [CompletionResult]::new('publish', 'publish', [CompletionResultType]::ParameterValue, 'Publish a version: requests that name no version or label get it')
            [CompletionResult]::new('label', 'label', [CompletionResultType]::ParameterValue, 'Point a label (production, staging, development or your own) at a version')
            [CompletionResult]::new('render', 'render', [CompletionResultType]::ParameterValue, 'Print the chat body a prompt renders to with the variables given')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Render a prompt and send it through the gateway; print the answer')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Show how two versions of a prompt differ (exit 1 if they do)')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Create or update prompts by name from a folder of YAML/JSON files')
            [CompletionResult]::new('partials', 'partials', [CompletionResultType]::ParameterValue, 'Reusable template text, included with {{>slug}}')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;prompts;list' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;prompts;ls' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;prompts;get' {
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'The version to show')
            [CompletionResult]::new('--label', '--label', [CompletionResultType]::ParameterName, 'The version a label points at')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'tollgate;prompts;create' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'The prompt as YAML or JSON, or `-` for standard input')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'The prompt as YAML or JSON, or `-` for standard input')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;prompts;update' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'The prompt as YAML or JSON, or `-` for standard input')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'The prompt as YAML or JSON, or `-` for standard input')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;prompts;delete' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;prompts;rm' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;prompts;versions' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;prompts;publish' {
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'version')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'tollgate;prompts;label' {
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'version')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'tollgate;prompts;render' {
            [CompletionResult]::new('--var', '--var', [CompletionResultType]::ParameterName, 'A template variable (repeatable); wins over --vars-file')
            [CompletionResult]::new('--vars-file', '--vars-file', [CompletionResultType]::ParameterName, 'Variables as a YAML or JSON object, or `-` for standard input')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;prompts;run' {
            [CompletionResult]::new('--var', '--var', [CompletionResultType]::ParameterName, 'A template variable (repeatable); wins over --vars-file')
            [CompletionResult]::new('--vars-file', '--vars-file', [CompletionResultType]::ParameterName, 'Variables as a YAML or JSON object, or `-` for standard input')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--stream', '--stream', [CompletionResultType]::ParameterName, 'Print the answer as it arrives')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;prompts;diff' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;prompts;apply' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'A prompt file, a folder of .yaml/.yml/.json prompt files, or `-` for standard input')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'A prompt file, a folder of .yaml/.yml/.json prompt files, or `-` for standard input')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show the plan without changing anything')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;prompts;partials' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List partials')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List partials')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show a partial''s text (the published version, or --version)')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Save a partial')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Add a version to a partial')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;prompts;partials;list' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;prompts;partials;ls' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;prompts;partials;get' {
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'version')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'tollgate;prompts;partials;create' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'name')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'The text from a file, or `-` for standard input')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'The text from a file, or `-` for standard input')
            [CompletionResult]::new('--string', '--string', [CompletionResultType]::ParameterName, 'The text itself')
            [CompletionResult]::new('--description', '--description', [CompletionResultType]::ParameterName, 'What this version changes')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;prompts;partials;update' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'name')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'The text from a file, or `-` for standard input')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'The text from a file, or `-` for standard input')
            [CompletionResult]::new('--string', '--string', [CompletionResultType]::ParameterName, 'The text itself')
            [CompletionResult]::new('--description', '--description', [CompletionResultType]::ParameterName, 'What this version changes')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;prompts;partials;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List partials')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show a partial''s text (the published version, or --version)')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Save a partial')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Add a version to a partial')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;prompts;partials;help;list' {
            break
        }
        'tollgate;prompts;partials;help;get' {
            break
        }
        'tollgate;prompts;partials;help;create' {
            break
        }
        'tollgate;prompts;partials;help;update' {
            break
        }
        'tollgate;prompts;partials;help;help' {
            break
        }
        'tollgate;prompts;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List prompts with their published and latest versions')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show a prompt: the published version, or the one asked for')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Save a prompt from a YAML or JSON file (name, model, parameters, messages, tools)')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Add a version to a prompt from a YAML or JSON file (nothing is overwritten)')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a prompt and all its versions')
            [CompletionResult]::new('versions', 'versions', [CompletionResultType]::ParameterValue, 'List a prompt''s versions, newest first, with their labels')
            [CompletionResult]::new('publish', 'publish', [CompletionResultType]::ParameterValue, 'Publish a version: requests that name no version or label get it')
            [CompletionResult]::new('label', 'label', [CompletionResultType]::ParameterValue, 'Point a label (production, staging, development or your own) at a version')
            [CompletionResult]::new('render', 'render', [CompletionResultType]::ParameterValue, 'Print the chat body a prompt renders to with the variables given')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Render a prompt and send it through the gateway; print the answer')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Show how two versions of a prompt differ (exit 1 if they do)')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Create or update prompts by name from a folder of YAML/JSON files')
            [CompletionResult]::new('partials', 'partials', [CompletionResultType]::ParameterValue, 'Reusable template text, included with {{>slug}}')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;prompts;help;list' {
            break
        }
        'tollgate;prompts;help;get' {
            break
        }
        'tollgate;prompts;help;create' {
            break
        }
        'tollgate;prompts;help;update' {
            break
        }
        'tollgate;prompts;help;delete' {
            break
        }
        'tollgate;prompts;help;versions' {
            break
        }
        'tollgate;prompts;help;publish' {
            break
        }
        'tollgate;prompts;help;label' {
            break
        }
        'tollgate;prompts;help;render' {
            break
        }
        'tollgate;prompts;help;run' {
            break
        }
        'tollgate;prompts;help;diff' {
            break
        }
        'tollgate;prompts;help;apply' {
            break
        }
        'tollgate;prompts;help;partials' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List partials')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show a partial''s text (the published version, or --version)')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Save a partial')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Add a version to a partial')
            break
        }
        'tollgate;prompts;help;partials;list' {
            break
        }
        'tollgate;prompts;help;partials;get' {
            break
        }
        'tollgate;prompts;help;partials;create' {
            break
        }
        'tollgate;prompts;help;partials;update' {
            break
        }
        'tollgate;prompts;help;help' {
            break
        }
        'tollgate;guardrails' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List saved guardrails')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List saved guardrails')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one guardrail, by id or slug')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Save a guardrail')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a guardrail''s name, checks or actions')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a guardrail no saved config names')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Delete a guardrail no saved config names')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Run a guardrail''s checks on a text, here, and show each verdict; exits 1 if it fails')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;guardrails;list' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;guardrails;ls' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;guardrails;get' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;guardrails;create' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'The name [required unless the file has one]')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'A YAML or JSON document {name, checks, actions} (- for stdin); flags override it')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'A YAML or JSON document {name, checks, actions} (- for stdin); flags override it')
            [CompletionResult]::new('--workspace', '--workspace', [CompletionResultType]::ParameterName, 'The workspace (id or slug) [default: the default workspace]')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'A check, as ID or ID=PARAMETERS-JSON, e.g. ''regexMatch={"rule":"\\d{4}"}'' (a bare name means default.NAME; repeatable; replaces all checks on update)')
            [CompletionResult]::new('--deny', '--deny', [CompletionResultType]::ParameterName, 'Refuse the request (446) when a check fails')
            [CompletionResult]::new('--async', '--async', [CompletionResultType]::ParameterName, 'Run without holding up the request; results are only recorded')
            [CompletionResult]::new('--sequential', '--sequential', [CompletionResultType]::ParameterName, 'Run the checks in order, each on what the one before changed')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;guardrails;update' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'name')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'A check, as ID or ID=PARAMETERS-JSON, e.g. ''regexMatch={"rule":"\\d{4}"}'' (a bare name means default.NAME; repeatable; replaces all checks on update)')
            [CompletionResult]::new('--deny', '--deny', [CompletionResultType]::ParameterName, 'Refuse the request (446) when a check fails')
            [CompletionResult]::new('--async', '--async', [CompletionResultType]::ParameterName, 'Run without holding up the request; results are only recorded')
            [CompletionResult]::new('--sequential', '--sequential', [CompletionResultType]::ParameterName, 'Run the checks in order, each on what the one before changed')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;guardrails;delete' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;guardrails;rm' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;guardrails;test' {
            [CompletionResult]::new('--text', '--text', [CompletionResultType]::ParameterName, 'The text to check [default: standard input]')
            [CompletionResult]::new('--stage', '--stage', [CompletionResultType]::ParameterName, 'stage')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'The model the request names (for modelWhitelist)')
            [CompletionResult]::new('--metadata', '--metadata', [CompletionResultType]::ParameterName, 'Request metadata (for requiredMetadataKeys; repeatable)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;guardrails;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List saved guardrails')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one guardrail, by id or slug')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Save a guardrail')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a guardrail''s name, checks or actions')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a guardrail no saved config names')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Run a guardrail''s checks on a text, here, and show each verdict; exits 1 if it fails')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;guardrails;help;list' {
            break
        }
        'tollgate;guardrails;help;get' {
            break
        }
        'tollgate;guardrails;help;create' {
            break
        }
        'tollgate;guardrails;help;update' {
            break
        }
        'tollgate;guardrails;help;delete' {
            break
        }
        'tollgate;guardrails;help;test' {
            break
        }
        'tollgate;guardrails;help;help' {
            break
        }
        'tollgate;workspaces' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List workspaces')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List workspaces')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one workspace, by id or slug')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a workspace')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a workspace''s name, description, defaults or allowed models')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a workspace that has no keys left')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Delete a workspace that has no keys left')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;workspaces;list' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Only workspaces whose name contains this text (any case)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;workspaces;ls' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Only workspaces whose name contains this text (any case)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;workspaces;get' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;workspaces;create' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'name')
            [CompletionResult]::new('--slug', '--slug', [CompletionResultType]::ParameterName, 'The slug [default: ws- and part of the name and six random characters]')
            [CompletionResult]::new('--description', '--description', [CompletionResultType]::ParameterName, 'description')
            [CompletionResult]::new('--metadata', '--metadata', [CompletionResultType]::ParameterName, 'Metadata added to every request made with the workspace''s keys; wins over the key''s and the request''s (repeatable)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A saved config for requests when neither they nor their key name one')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412')
            [CompletionResult]::new('--budget-type', '--budget-type', [CompletionResultType]::ParameterName, 'What the budget counts')
            [CompletionResult]::new('--period', '--period', [CompletionResultType]::ParameterName, 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]')
            [CompletionResult]::new('--alert', '--alert', [CompletionResultType]::ParameterName, 'Alert (webhook and event) when this percentage of the budget is used')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)')
            [CompletionResult]::new('--token-rate', '--token-rate', [CompletionResultType]::ParameterName, 'A token rate limit (input plus output), e.g. 100000/min (repeatable)')
            [CompletionResult]::new('--models', '--models', [CompletionResultType]::ParameterName, 'Models it may use: patterns such as ''@openai-dev/*'' or gpt-4o* (comma-separated, repeatable)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;workspaces;update' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'name')
            [CompletionResult]::new('--description', '--description', [CompletionResultType]::ParameterName, 'description')
            [CompletionResult]::new('--metadata', '--metadata', [CompletionResultType]::ParameterName, 'Metadata added to every request made with the workspace''s keys; wins over the key''s and the request''s (repeatable)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A saved config for requests when neither they nor their key name one')
            [CompletionResult]::new('--budget', '--budget', [CompletionResultType]::ParameterName, 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412')
            [CompletionResult]::new('--budget-type', '--budget-type', [CompletionResultType]::ParameterName, 'What the budget counts')
            [CompletionResult]::new('--period', '--period', [CompletionResultType]::ParameterName, 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]')
            [CompletionResult]::new('--alert', '--alert', [CompletionResultType]::ParameterName, 'Alert (webhook and event) when this percentage of the budget is used')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)')
            [CompletionResult]::new('--token-rate', '--token-rate', [CompletionResultType]::ParameterName, 'A token rate limit (input plus output), e.g. 100000/min (repeatable)')
            [CompletionResult]::new('--models', '--models', [CompletionResultType]::ParameterName, 'Models it may use: patterns such as ''@openai-dev/*'' or gpt-4o* (comma-separated, repeatable)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('--no-budget', '--no-budget', [CompletionResultType]::ParameterName, 'Remove the budget')
            [CompletionResult]::new('--no-rate-limits', '--no-rate-limits', [CompletionResultType]::ParameterName, 'Remove the rate limits')
            [CompletionResult]::new('--all-models', '--all-models', [CompletionResultType]::ParameterName, 'Allow every model again')
            [CompletionResult]::new('--reset-usage', '--reset-usage', [CompletionResultType]::ParameterName, 'Start the budget''s window over from zero')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;workspaces;delete' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;workspaces;rm' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;workspaces;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List workspaces')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one workspace, by id or slug')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a workspace')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a workspace''s name, description, defaults or allowed models')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a workspace that has no keys left')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;workspaces;help;list' {
            break
        }
        'tollgate;workspaces;help;get' {
            break
        }
        'tollgate;workspaces;help;create' {
            break
        }
        'tollgate;workspaces;help;update' {
            break
        }
        'tollgate;workspaces;help;delete' {
            break
        }
        'tollgate;workspaces;help;help' {
            break
        }
        'tollgate;cache' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('stats', 'stats', [CompletionResultType]::ParameterValue, 'Entries, size and bound; lookups since start by outcome; entries per namespace; the cost cache hits saved')
            [CompletionResult]::new('purge', 'purge', [CompletionResultType]::ParameterValue, 'Delete cached answers, from memory and the store: one namespace''s, or every one')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;cache;stats' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'The window of the cost saved: RFC 3339 or a duration before now (24h, 7d, 2w)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;cache;purge' {
            [CompletionResult]::new('--namespace', '--namespace', [CompletionResultType]::ParameterName, 'Only the entries cached under this x-portkey-cache-namespace')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be sent without sending it')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;cache;help' {
            [CompletionResult]::new('stats', 'stats', [CompletionResultType]::ParameterValue, 'Entries, size and bound; lookups since start by outcome; entries per namespace; the cost cache hits saved')
            [CompletionResult]::new('purge', 'purge', [CompletionResultType]::ParameterValue, 'Delete cached answers, from memory and the store: one namespace''s, or every one')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;cache;help;stats' {
            break
        }
        'tollgate;cache;help;purge' {
            break
        }
        'tollgate;cache;help;help' {
            break
        }
        'tollgate;logs' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List request records, newest first')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List request records, newest first')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one record with its request and response bodies')
            [CompletionResult]::new('tail', 'tail', [CompletionResultType]::ParameterValue, 'Print each finished request as it happens, until Ctrl-C; with --since, the earlier ones first')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write every matching record as NDJSON or CSV')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;logs;list' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Only records before this time: RFC 3339 or a duration before now')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'The model, e.g. gpt-4o')
            [CompletionResult]::new('--provider', '--provider', [CompletionResultType]::ParameterName, 'The provider, e.g. openai')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'A status code (429) or class (5xx)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The user (metadata _user)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The API key that made the request, by id or name')
            [CompletionResult]::new('--metadata', '--metadata', [CompletionResultType]::ParameterName, 'A metadata value the records must carry (repeatable)')
            [CompletionResult]::new('--trace-id', '--trace-id', [CompletionResultType]::ParameterName, 'Only the records of this trace')
            [CompletionResult]::new('--min-cost', '--min-cost', [CompletionResultType]::ParameterName, 'Only records that cost at least this much, in USD')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'How many records to show (1 to 1000)')
            [CompletionResult]::new('--cursor', '--cursor', [CompletionResultType]::ParameterName, 'Continue where an earlier list stopped (it prints the cursor on stderr)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;logs;ls' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Only records before this time: RFC 3339 or a duration before now')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'The model, e.g. gpt-4o')
            [CompletionResult]::new('--provider', '--provider', [CompletionResultType]::ParameterName, 'The provider, e.g. openai')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'A status code (429) or class (5xx)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The user (metadata _user)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The API key that made the request, by id or name')
            [CompletionResult]::new('--metadata', '--metadata', [CompletionResultType]::ParameterName, 'A metadata value the records must carry (repeatable)')
            [CompletionResult]::new('--trace-id', '--trace-id', [CompletionResultType]::ParameterName, 'Only the records of this trace')
            [CompletionResult]::new('--min-cost', '--min-cost', [CompletionResultType]::ParameterName, 'Only records that cost at least this much, in USD')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'How many records to show (1 to 1000)')
            [CompletionResult]::new('--cursor', '--cursor', [CompletionResultType]::ParameterName, 'Continue where an earlier list stopped (it prints the cursor on stderr)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;logs;get' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;logs;tail' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Only records before this time: RFC 3339 or a duration before now')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'The model, e.g. gpt-4o')
            [CompletionResult]::new('--provider', '--provider', [CompletionResultType]::ParameterName, 'The provider, e.g. openai')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'A status code (429) or class (5xx)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The user (metadata _user)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The API key that made the request, by id or name')
            [CompletionResult]::new('--metadata', '--metadata', [CompletionResultType]::ParameterName, 'A metadata value the records must carry (repeatable)')
            [CompletionResult]::new('--trace-id', '--trace-id', [CompletionResultType]::ParameterName, 'Only the records of this trace')
            [CompletionResult]::new('--min-cost', '--min-cost', [CompletionResultType]::ParameterName, 'Only records that cost at least this much, in USD')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;logs;export' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Only records before this time: RFC 3339 or a duration before now')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'The model, e.g. gpt-4o')
            [CompletionResult]::new('--provider', '--provider', [CompletionResultType]::ParameterName, 'The provider, e.g. openai')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'A status code (429) or class (5xx)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The user (metadata _user)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The API key that made the request, by id or name')
            [CompletionResult]::new('--metadata', '--metadata', [CompletionResultType]::ParameterName, 'A metadata value the records must carry (repeatable)')
            [CompletionResult]::new('--trace-id', '--trace-id', [CompletionResultType]::ParameterName, 'Only the records of this trace')
            [CompletionResult]::new('--min-cost', '--min-cost', [CompletionResultType]::ParameterName, 'Only records that cost at least this much, in USD')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'format')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Write to this file, which appears only when the export is complete [default: stdout]')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--include-bodies', '--include-bodies', [CompletionResultType]::ParameterName, 'Include each record''s request and response bodies')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;logs;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List request records, newest first')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one record with its request and response bodies')
            [CompletionResult]::new('tail', 'tail', [CompletionResultType]::ParameterValue, 'Print each finished request as it happens, until Ctrl-C; with --since, the earlier ones first')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write every matching record as NDJSON or CSV')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;logs;help;list' {
            break
        }
        'tollgate;logs;help;get' {
            break
        }
        'tollgate;logs;help;tail' {
            break
        }
        'tollgate;logs;help;export' {
            break
        }
        'tollgate;logs;help;help' {
            break
        }
        'tollgate;trace' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show a trace''s spans as a tree with a timing waterfall')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;trace;show' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;trace;help' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show a trace''s spans as a tree with a timing waterfall')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;trace;help;show' {
            break
        }
        'tollgate;trace;help;help' {
            break
        }
        'tollgate;audit' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List admin changes, newest first: who, what, when, from where, and the status')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List admin changes, newest first: who, what, when, from where, and the status')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;audit;list' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only changes since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 1d)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Only changes before this time: RFC 3339 or a duration before now')
            [CompletionResult]::new('--action', '--action', [CompletionResultType]::ParameterName, 'create, update, delete or rotate')
            [CompletionResult]::new('--resource-type', '--resource-type', [CompletionResultType]::ParameterName, 'The route''s resource: integrations, configs, api-keys, ...')
            [CompletionResult]::new('--actor', '--actor', [CompletionResultType]::ParameterName, 'Only the changes made with this API key')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'How many changes to show (1 to 1000)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;audit;ls' {
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only changes since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 1d)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Only changes before this time: RFC 3339 or a duration before now')
            [CompletionResult]::new('--action', '--action', [CompletionResultType]::ParameterName, 'create, update, delete or rotate')
            [CompletionResult]::new('--resource-type', '--resource-type', [CompletionResultType]::ParameterName, 'The route''s resource: integrations, configs, api-keys, ...')
            [CompletionResult]::new('--actor', '--actor', [CompletionResultType]::ParameterName, 'Only the changes made with this API key')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'How many changes to show (1 to 1000)')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;audit;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List admin changes, newest first: who, what, when, from where, and the status')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;audit;help;list' {
            break
        }
        'tollgate;audit;help;help' {
            break
        }
        'tollgate;usage' {
            [CompletionResult]::new('--by', '--by', [CompletionResultType]::ParameterName, 'What to group by: model, provider, user, key, metadata.KEY, or time:INTERVAL (e.g. time:1h, one row per hour)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Only records before this time: RFC 3339 or a duration before now')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'The model, e.g. gpt-4o')
            [CompletionResult]::new('--provider', '--provider', [CompletionResultType]::ParameterName, 'The provider, e.g. openai')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'A status code (429) or class (5xx)')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The user (metadata _user)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The API key that made the request, by id or name')
            [CompletionResult]::new('--metadata', '--metadata', [CompletionResultType]::ParameterName, 'A metadata value the records must carry (repeatable)')
            [CompletionResult]::new('--trace-id', '--trace-id', [CompletionResultType]::ParameterName, 'Only the records of this trace')
            [CompletionResult]::new('--min-cost', '--min-cost', [CompletionResultType]::ParameterName, 'Only records that cost at least this much, in USD')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;chat' {
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'The model, e.g. @openai-dev/gpt-4o (may be left to the config)')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'The model, e.g. @openai-dev/gpt-4o (may be left to the config)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'A saved config (pc-...) or a config file (YAML or JSON)')
            [CompletionResult]::new('--metadata', '--metadata', [CompletionResultType]::ParameterName, 'Request metadata (repeatable)')
            [CompletionResult]::new('--trace-id', '--trace-id', [CompletionResultType]::ParameterName, 'trace-id')
            [CompletionResult]::new('--system', '--system', [CompletionResultType]::ParameterName, 'A system message')
            [CompletionResult]::new('--temperature', '--temperature', [CompletionResultType]::ParameterName, 'temperature')
            [CompletionResult]::new('--max-tokens', '--max-tokens', [CompletionResultType]::ParameterName, 'max-tokens')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;context' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add (or change) a context')
            [CompletionResult]::new('use', 'use', [CompletionResultType]::ParameterValue, 'Make a context the current one')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List contexts')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List contexts')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a context and its stored key')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Remove a context and its stored key')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;context;add' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'url')
            [CompletionResult]::new('--default-output', '--default-output', [CompletionResultType]::ParameterName, 'This context''s default output format')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--use', '--use', [CompletionResultType]::ParameterName, 'Make it the current context')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;context;use' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;context;list' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;context;ls' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;context;remove' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;context;rm' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;context;help' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add (or change) a context')
            [CompletionResult]::new('use', 'use', [CompletionResultType]::ParameterValue, 'Make a context the current one')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List contexts')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a context and its stored key')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;context;help;add' {
            break
        }
        'tollgate;context;help;use' {
            break
        }
        'tollgate;context;help;list' {
            break
        }
        'tollgate;context;help;remove' {
            break
        }
        'tollgate;context;help;help' {
            break
        }
        'tollgate;login' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('--with-token', '--with-token', [CompletionResultType]::ParameterName, 'Read the key from standard input (the default when stdin is not a terminal)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;logout' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;whoami' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;status' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;db' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Apply the store''s pending schema migrations (`serve` also does on start)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the store''s backend, schema version, rows per table and, on Postgres, the request records'' partitions; migrates nothing')
            [CompletionResult]::new('copy', 'copy', [CompletionResultType]::ParameterValue, 'Copy a SQLite store into a new Postgres database, in one transaction, with the row counts checked at the end')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;db;migrate' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Where the SQLite database and master key live [default: $XDG_DATA_HOME/tollgate]')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'The Postgres database that holds everything, instead of SQLite in the data dir, e.g. postgres://tollgate@db.internal/tollgate (docs/postgres.md); empty means SQLite')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;db;status' {
            [CompletionResult]::new('--data-dir', '--data-dir', [CompletionResultType]::ParameterName, 'Where the SQLite database and master key live [default: $XDG_DATA_HOME/tollgate]')
            [CompletionResult]::new('--database-url', '--database-url', [CompletionResultType]::ParameterName, 'The Postgres database that holds everything, instead of SQLite in the data dir, e.g. postgres://tollgate@db.internal/tollgate (docs/postgres.md); empty means SQLite')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;db;copy' {
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'The SQLite store: sqlite:PATH, PATH being a data dir or its tollgate.db')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'The Postgres database to fill, new or empty (its schema is made first), e.g. postgres://tollgate:PASSWORD@db.internal/tollgate')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;db;help' {
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Apply the store''s pending schema migrations (`serve` also does on start)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the store''s backend, schema version, rows per table and, on Postgres, the request records'' partitions; migrates nothing')
            [CompletionResult]::new('copy', 'copy', [CompletionResultType]::ParameterValue, 'Copy a SQLite store into a new Postgres database, in one transaction, with the row counts checked at the end')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;db;help;migrate' {
            break
        }
        'tollgate;db;help;status' {
            break
        }
        'tollgate;db;help;copy' {
            break
        }
        'tollgate;db;help;help' {
            break
        }
        'tollgate;api' {
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'A JSON body; @FILE reads it from a file, @- from standard input')
            [CompletionResult]::new('--data', '--data', [CompletionResultType]::ParameterName, 'A JSON body; @FILE reads it from a file, @- from standard input')
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;completions' {
            [CompletionResult]::new('--context', '--context', [CompletionResultType]::ParameterName, 'Which control plane to talk to (a context added with `tollgate context add`)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The control plane''s address, overriding the context''s')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format [default: table, or the context''s]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (NO_COLOR also turns it off)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip confirmations')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt; fail with a hint naming the flag to pass instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'tollgate;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the control plane and gateway')
            [CompletionResult]::new('integrations', 'integrations', [CompletionResultType]::ParameterValue, 'Provider credentials')
            [CompletionResult]::new('configs', 'configs', [CompletionResultType]::ParameterValue, 'Routing configs (Portkey config JSON), versioned')
            [CompletionResult]::new('keys', 'keys', [CompletionResultType]::ParameterValue, 'API keys for the gateway and the admin API')
            [CompletionResult]::new('budgets', 'budgets', [CompletionResultType]::ParameterValue, 'Budgets: spend limits per key, workspace, integration, user or any metadata')
            [CompletionResult]::new('prompts', 'prompts', [CompletionResultType]::ParameterValue, 'Prompts: versioned Mustache templates, labels, partials; render and run them')
            [CompletionResult]::new('guardrails', 'guardrails', [CompletionResultType]::ParameterValue, 'Guardrails: checks on requests and answers (PII, regex, JSON schema, webhooks, ...); try one on a text with `guardrails test`')
            [CompletionResult]::new('workspaces', 'workspaces', [CompletionResultType]::ParameterValue, 'Workspaces: groups of keys sharing default metadata, config and allowed models')
            [CompletionResult]::new('cache', 'cache', [CompletionResultType]::ParameterValue, 'The response cache: stats, purge')
            [CompletionResult]::new('logs', 'logs', [CompletionResultType]::ParameterValue, 'Request records: list, show, follow live, export')
            [CompletionResult]::new('trace', 'trace', [CompletionResultType]::ParameterValue, 'Traces: the spans of an agent run or a request, as a tree with timings')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'The audit log of admin changes: who changed what, when, from where')
            [CompletionResult]::new('usage', 'usage', [CompletionResultType]::ParameterValue, 'Requests, errors, tokens, cost and latency per model, provider, user, key or metadata value, over the last 7 days unless --since says otherwise')
            [CompletionResult]::new('chat', 'chat', [CompletionResultType]::ParameterValue, 'Send a chat request through the gateway and stream the answer')
            [CompletionResult]::new('context', 'context', [CompletionResultType]::ParameterValue, 'Named control planes (URL + stored credential)')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'Store an API key for the current context, after checking it with the server')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Forget the stored API key of the current context')
            [CompletionResult]::new('whoami', 'whoami', [CompletionResultType]::ParameterValue, 'Show the calling key: name, type and scopes')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the control plane''s address, version and health, and who you are')
            [CompletionResult]::new('db', 'db', [CompletionResultType]::ParameterValue, 'The store itself: schema migrations, status, and copying SQLite into Postgres')
            [CompletionResult]::new('api', 'api', [CompletionResultType]::ParameterValue, 'Send a raw authenticated request to the control plane')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'tollgate;help;serve' {
            break
        }
        'tollgate;help;integrations' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List integrations')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one integration (its key masked)')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Store a provider''s credential under a slug')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change an integration''s name, base URL, description or key')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete an integration')
            break
        }
        'tollgate;help;integrations;list' {
            break
        }
        'tollgate;help;integrations;get' {
            break
        }
        'tollgate;help;integrations;create' {
            break
        }
        'tollgate;help;integrations;update' {
            break
        }
        'tollgate;help;integrations;delete' {
            break
        }
        'tollgate;help;configs' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List saved configs')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show a config (`-o yaml` output can be fed back to `apply`)')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Save a config from a YAML or JSON file')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a config; every update makes a new version')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a config and its versions')
            [CompletionResult]::new('versions', 'versions', [CompletionResultType]::ParameterValue, 'List a config''s versions, newest first')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Check a config file without a server')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Create or update configs by name from a file, a folder of files, or stdin')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Show how a file differs from the saved config of the same name (exit 1 if it does)')
            break
        }
        'tollgate;help;configs;list' {
            break
        }
        'tollgate;help;configs;get' {
            break
        }
        'tollgate;help;configs;create' {
            break
        }
        'tollgate;help;configs;update' {
            break
        }
        'tollgate;help;configs;delete' {
            break
        }
        'tollgate;help;configs;versions' {
            break
        }
        'tollgate;help;configs;validate' {
            break
        }
        'tollgate;help;configs;apply' {
            break
        }
        'tollgate;help;configs;diff' {
            break
        }
        'tollgate;help;keys' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List keys (secrets masked)')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one key (secret masked)')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a key and print its secret, once')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a key''s name, scopes, defaults or expiry')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Revoke a key at once')
            [CompletionResult]::new('rotate', 'rotate', [CompletionResultType]::ParameterValue, 'Give a key a new secret; the old one keeps working for the grace period')
            break
        }
        'tollgate;help;keys;list' {
            break
        }
        'tollgate;help;keys;get' {
            break
        }
        'tollgate;help;keys;create' {
            break
        }
        'tollgate;help;keys;update' {
            break
        }
        'tollgate;help;keys;delete' {
            break
        }
        'tollgate;help;keys;rotate' {
            break
        }
        'tollgate;help;budgets' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List budgets, including those of keys, workspaces and integrations')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one budget')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a budget policy')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a budget''s limit, period, alert, conditions or status')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a budget')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Spend, reserved and remaining per budget and group value, and when each resets')
            [CompletionResult]::new('reset', 'reset', [CompletionResultType]::ParameterValue, 'Start a budget''s current window over from zero')
            break
        }
        'tollgate;help;budgets;list' {
            break
        }
        'tollgate;help;budgets;get' {
            break
        }
        'tollgate;help;budgets;create' {
            break
        }
        'tollgate;help;budgets;update' {
            break
        }
        'tollgate;help;budgets;delete' {
            break
        }
        'tollgate;help;budgets;status' {
            break
        }
        'tollgate;help;budgets;reset' {
            break
        }
        'tollgate;help;prompts' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List prompts with their published and latest versions')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show a prompt: the published version, or the one asked for')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Save a prompt from a YAML or JSON file (name, model, parameters, messages, tools)')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Add a version to a prompt from a YAML or JSON file (nothing is overwritten)')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a prompt and all its versions')
            [CompletionResult]::new('versions', 'versions', [CompletionResultType]::ParameterValue, 'List a prompt''s versions, newest first, with their labels')
            [CompletionResult]::new('publish', 'publish', [CompletionResultType]::ParameterValue, 'Publish a version: requests that name no version or label get it')
            [CompletionResult]::new('label', 'label', [CompletionResultType]::ParameterValue, 'Point a label (production, staging, development or your own) at a version')
            [CompletionResult]::new('render', 'render', [CompletionResultType]::ParameterValue, 'Print the chat body a prompt renders to with the variables given')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Render a prompt and send it through the gateway; print the answer')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Show how two versions of a prompt differ (exit 1 if they do)')
            [CompletionResult]::new('apply', 'apply', [CompletionResultType]::ParameterValue, 'Create or update prompts by name from a folder of YAML/JSON files')
            [CompletionResult]::new('partials', 'partials', [CompletionResultType]::ParameterValue, 'Reusable template text, included with {{>slug}}')
            break
        }
        'tollgate;help;prompts;list' {
            break
        }
        'tollgate;help;prompts;get' {
            break
        }
        'tollgate;help;prompts;create' {
            break
        }
        'tollgate;help;prompts;update' {
            break
        }
        'tollgate;help;prompts;delete' {
            break
        }
        'tollgate;help;prompts;versions' {
            break
        }
        'tollgate;help;prompts;publish' {
            break
        }
        'tollgate;help;prompts;label' {
            break
        }
        'tollgate;help;prompts;render' {
            break
        }
        'tollgate;help;prompts;run' {
            break
        }
        'tollgate;help;prompts;diff' {
            break
        }
        'tollgate;help;prompts;apply' {
            break
        }
        'tollgate;help;prompts;partials' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List partials')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show a partial''s text (the published version, or --version)')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Save a partial')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Add a version to a partial')
            break
        }
        'tollgate;help;prompts;partials;list' {
            break
        }
        'tollgate;help;prompts;partials;get' {
            break
        }
        'tollgate;help;prompts;partials;create' {
            break
        }
        'tollgate;help;prompts;partials;update' {
            break
        }
        'tollgate;help;guardrails' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List saved guardrails')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one guardrail, by id or slug')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Save a guardrail')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a guardrail''s name, checks or actions')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a guardrail no saved config names')
            [CompletionResult]::new('test', 'test', [CompletionResultType]::ParameterValue, 'Run a guardrail''s checks on a text, here, and show each verdict; exits 1 if it fails')
            break
        }
        'tollgate;help;guardrails;list' {
            break
        }
        'tollgate;help;guardrails;get' {
            break
        }
        'tollgate;help;guardrails;create' {
            break
        }
        'tollgate;help;guardrails;update' {
            break
        }
        'tollgate;help;guardrails;delete' {
            break
        }
        'tollgate;help;guardrails;test' {
            break
        }
        'tollgate;help;workspaces' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List workspaces')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one workspace, by id or slug')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a workspace')
            [CompletionResult]::new('update', 'update', [CompletionResultType]::ParameterValue, 'Change a workspace''s name, description, defaults or allowed models')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete a workspace that has no keys left')
            break
        }
        'tollgate;help;workspaces;list' {
            break
        }
        'tollgate;help;workspaces;get' {
            break
        }
        'tollgate;help;workspaces;create' {
            break
        }
        'tollgate;help;workspaces;update' {
            break
        }
        'tollgate;help;workspaces;delete' {
            break
        }
        'tollgate;help;cache' {
            [CompletionResult]::new('stats', 'stats', [CompletionResultType]::ParameterValue, 'Entries, size and bound; lookups since start by outcome; entries per namespace; the cost cache hits saved')
            [CompletionResult]::new('purge', 'purge', [CompletionResultType]::ParameterValue, 'Delete cached answers, from memory and the store: one namespace''s, or every one')
            break
        }
        'tollgate;help;cache;stats' {
            break
        }
        'tollgate;help;cache;purge' {
            break
        }
        'tollgate;help;logs' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List request records, newest first')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Show one record with its request and response bodies')
            [CompletionResult]::new('tail', 'tail', [CompletionResultType]::ParameterValue, 'Print each finished request as it happens, until Ctrl-C; with --since, the earlier ones first')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write every matching record as NDJSON or CSV')
            break
        }
        'tollgate;help;logs;list' {
            break
        }
        'tollgate;help;logs;get' {
            break
        }
        'tollgate;help;logs;tail' {
            break
        }
        'tollgate;help;logs;export' {
            break
        }
        'tollgate;help;trace' {
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show a trace''s spans as a tree with a timing waterfall')
            break
        }
        'tollgate;help;trace;show' {
            break
        }
        'tollgate;help;audit' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List admin changes, newest first: who, what, when, from where, and the status')
            break
        }
        'tollgate;help;audit;list' {
            break
        }
        'tollgate;help;usage' {
            break
        }
        'tollgate;help;chat' {
            break
        }
        'tollgate;help;context' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add (or change) a context')
            [CompletionResult]::new('use', 'use', [CompletionResultType]::ParameterValue, 'Make a context the current one')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List contexts')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove a context and its stored key')
            break
        }
        'tollgate;help;context;add' {
            break
        }
        'tollgate;help;context;use' {
            break
        }
        'tollgate;help;context;list' {
            break
        }
        'tollgate;help;context;remove' {
            break
        }
        'tollgate;help;login' {
            break
        }
        'tollgate;help;logout' {
            break
        }
        'tollgate;help;whoami' {
            break
        }
        'tollgate;help;status' {
            break
        }
        'tollgate;help;db' {
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Apply the store''s pending schema migrations (`serve` also does on start)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the store''s backend, schema version, rows per table and, on Postgres, the request records'' partitions; migrates nothing')
            [CompletionResult]::new('copy', 'copy', [CompletionResultType]::ParameterValue, 'Copy a SQLite store into a new Postgres database, in one transaction, with the row counts checked at the end')
            break
        }
        'tollgate;help;db;migrate' {
            break
        }
        'tollgate;help;db;status' {
            break
        }
        'tollgate;help;db;copy' {
            break
        }
        'tollgate;help;api' {
            break
        }
        'tollgate;help;completions' {
            break
        }
        'tollgate;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
