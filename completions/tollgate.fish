# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_tollgate_global_optspecs
    string join \n context= url= o/output= q/quiet v/verbose color= y/yes no-input h/help V/version
end

function __fish_tollgate_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_tollgate_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_tollgate_using_subcommand
    set -l cmd (__fish_tollgate_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c tollgate -n "__fish_tollgate_needs_command" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_needs_command" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_needs_command" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_needs_command" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_needs_command" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_needs_command" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_needs_command" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_needs_command" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tollgate -n "__fish_tollgate_needs_command" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "serve" -d 'Run the control plane and gateway'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "integrations" -d 'Provider credentials'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "configs" -d 'Routing configs (Portkey config JSON), versioned'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "keys" -d 'API keys for the gateway and the admin API'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "budgets" -d 'Budgets: spend limits per key, workspace, integration, user or any metadata'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "prompts" -d 'Prompts: versioned Mustache templates, labels, partials; render and run them'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "guardrails" -d 'Guardrails: checks on requests and answers (PII, regex, JSON schema, webhooks, ...); try one on a text with `guardrails test`'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "workspaces" -d 'Workspaces: groups of keys sharing default metadata, config and allowed models'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "cache" -d 'The response cache: stats, purge'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "logs" -d 'Request records: list, show, follow live, export'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "trace" -d 'Traces: the spans of an agent run or a request, as a tree with timings'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "audit" -d 'The audit log of admin changes: who changed what, when, from where'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "usage" -d 'Requests, errors, tokens, cost and latency per model, provider, user, key or metadata value, over the last 7 days unless --since says otherwise'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "chat" -d 'Send a chat request through the gateway and stream the answer'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "context" -d 'Named control planes (URL + stored credential)'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "login" -d 'Store an API key for the current context, after checking it with the server'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "logout" -d 'Forget the stored API key of the current context'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "whoami" -d 'Show the calling key: name, type and scopes'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "status" -d 'Show the control plane\'s address, version and health, and who you are'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "db" -d 'The store itself: schema migrations, status, and copying SQLite into Postgres'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "api" -d 'Send a raw authenticated request to the control plane'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "completions" -d 'Print shell completions'
complete -c tollgate -n "__fish_tollgate_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l addr -d 'Address to listen on' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l data-dir -d 'Where the SQLite database and master key live [default: $XDG_DATA_HOME/tollgate]' -r -F
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l database-url -d 'The Postgres database that holds everything, instead of SQLite in the data dir, e.g. postgres://tollgate@db.internal/tollgate (docs/postgres.md); empty means SQLite' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l retry-base-ms -d 'The first retry of a failed upstream call waits about this long, doubling each time' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l log-bodies -d 'Whether request records keep request and response bodies (a key can also turn it off)' -r -f -a "true\t''
false\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l log-retention -d 'Delete request records older than this, e.g. 30d [default: keep them all]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l otlp-endpoint -d 'Send every request record as OpenTelemetry spans to this OTLP/HTTP receiver, e.g. http://127.0.0.1:4318' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l otlp-header -d 'A header for the OTLP receiver, e.g. for its authentication (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l alert-webhook -d 'Post budget alerts (a budget\'s alert threshold or its limit reached) to this URL as JSON' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l cache-size -d 'The most the response cache keeps in memory, in megabytes (the least recently used answers are evicted first)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l record-queue-limit -d 'While the database is unavailable, hold up to this many request records in memory and write them when it is back; later ones are dropped and counted (docs/postgres.md)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l record-queue-mb -d 'The most memory those held records may take, in megabytes (bodies included)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l lb-seed -d 'Seed load balancing\'s random choices (for reproducible tests)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand serve" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "list" -d 'List integrations'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "ls" -d 'List integrations'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "get" -d 'Show one integration (its key masked)'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "create" -d 'Store a provider\'s credential under a slug'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "update" -d 'Change an integration\'s name, base URL, description or key'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "delete" -d 'Delete an integration'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "rm" -d 'Delete an integration'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from list" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from list" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from list" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from list" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from ls" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from ls" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from ls" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from ls" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from ls" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from get" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from get" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from get" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from get" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from get" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l slug -d 'The slug requests use, as in `@openai-dev/gpt-4o`' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l provider -d 'The provider (`openai`, `anthropic`, `google`, `bedrock`, ...)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l name -d 'A display name [default: the slug]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l base-url -d 'Send requests to this base URL instead of the provider\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l description -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l budget -d 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l budget-type -d 'What the budget counts' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l period -d 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l alert -d 'Alert (webhook and event) when this percentage of the budget is used' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l rate -d 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l token-rate -d 'A token rate limit (input plus output), e.g. 100000/min (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l models -d 'Models it may use: patterns such as \'@openai-dev/*\' or gpt-4o* (comma-separated, repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l api-key-stdin -d 'Read the provider\'s API key from standard input instead of a hidden prompt'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l name -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l base-url -d 'A new base URL; an empty string removes it' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l description -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l budget -d 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l budget-type -d 'What the budget counts' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l period -d 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l alert -d 'Alert (webhook and event) when this percentage of the budget is used' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l rate -d 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l token-rate -d 'A token rate limit (input plus output), e.g. 100000/min (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l models -d 'Models it may use: patterns such as \'@openai-dev/*\' or gpt-4o* (comma-separated, repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l api-key-stdin -d 'Replace the API key with one read from standard input'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l prompt-api-key -d 'Replace the API key with one typed at a hidden prompt'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l no-budget -d 'Remove the budget'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l no-rate-limits -d 'Remove the rate limits'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l all-models -d 'Allow every model again'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l reset-usage -d 'Start the budget\'s window over from zero'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from delete" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from delete" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from delete" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from delete" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from delete" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from delete" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from delete" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from delete" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from rm" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from rm" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from rm" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from rm" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from rm" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from rm" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from rm" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from rm" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from rm" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from rm" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from help" -f -a "list" -d 'List integrations'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show one integration (its key masked)'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from help" -f -a "create" -d 'Store a provider\'s credential under a slug'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from help" -f -a "update" -d 'Change an integration\'s name, base URL, description or key'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete an integration'
complete -c tollgate -n "__fish_tollgate_using_subcommand integrations; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -f -a "list" -d 'List saved configs'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -f -a "ls" -d 'List saved configs'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -f -a "get" -d 'Show a config (`-o yaml` output can be fed back to `apply`)'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -f -a "create" -d 'Save a config from a YAML or JSON file'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -f -a "update" -d 'Change a config; every update makes a new version'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -f -a "delete" -d 'Delete a config and its versions'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -f -a "rm" -d 'Delete a config and its versions'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -f -a "versions" -d 'List a config\'s versions, newest first'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -f -a "validate" -d 'Check a config file without a server'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -f -a "apply" -d 'Create or update configs by name from a file, a folder of files, or stdin'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -f -a "diff" -d 'Show how a file differs from the saved config of the same name (exit 1 if it does)'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and not __fish_seen_subcommand_from list ls get create update delete rm versions validate apply diff help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from list" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from list" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from list" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from list" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from ls" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from ls" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from ls" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from ls" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from ls" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from get" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from get" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from get" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from get" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from get" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from create" -l name -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from create" -s f -l file -d 'The config as YAML or JSON, or `-` for standard input' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from create" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from create" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from create" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from create" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from create" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from create" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from update" -s f -l file -d 'The new config as YAML or JSON, or `-` for standard input' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from update" -l name -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from update" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from update" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from update" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from update" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from update" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from update" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from update" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from update" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from update" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from delete" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from delete" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from delete" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from delete" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from delete" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from delete" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from delete" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from delete" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from rm" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from rm" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from rm" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from rm" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from rm" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from rm" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from rm" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from rm" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from rm" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from rm" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from versions" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from versions" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from versions" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from versions" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from versions" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from versions" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from versions" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from versions" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from versions" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from versions" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from validate" -s f -l file -d 'A YAML or JSON file, or `-` for standard input' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from validate" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from validate" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from validate" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from validate" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from validate" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from validate" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from validate" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from validate" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from validate" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from validate" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from apply" -s f -l file -d 'A file, a folder of .yaml/.yml/.json files, or `-` for standard input' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from apply" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from apply" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from apply" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from apply" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from apply" -l dry-run -d 'Show the plan without changing anything'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from apply" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from apply" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from apply" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from apply" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from apply" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from apply" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from diff" -s f -l file -d 'A YAML or JSON file, or `-` for standard input' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from diff" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from diff" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from diff" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from diff" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from diff" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from diff" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from diff" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from diff" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from diff" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from diff" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from help" -f -a "list" -d 'List saved configs'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show a config (`-o yaml` output can be fed back to `apply`)'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from help" -f -a "create" -d 'Save a config from a YAML or JSON file'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from help" -f -a "update" -d 'Change a config; every update makes a new version'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete a config and its versions'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from help" -f -a "versions" -d 'List a config\'s versions, newest first'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from help" -f -a "validate" -d 'Check a config file without a server'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from help" -f -a "apply" -d 'Create or update configs by name from a file, a folder of files, or stdin'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from help" -f -a "diff" -d 'Show how a file differs from the saved config of the same name (exit 1 if it does)'
complete -c tollgate -n "__fish_tollgate_using_subcommand configs; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -f -a "list" -d 'List keys (secrets masked)'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -f -a "ls" -d 'List keys (secrets masked)'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -f -a "get" -d 'Show one key (secret masked)'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -f -a "create" -d 'Create a key and print its secret, once'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -f -a "update" -d 'Change a key\'s name, scopes, defaults or expiry'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -f -a "delete" -d 'Revoke a key at once'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -f -a "rm" -d 'Revoke a key at once'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -f -a "rotate" -d 'Give a key a new secret; the old one keeps working for the grace period'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and not __fish_seen_subcommand_from list ls get create update delete rm rotate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from list" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from list" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from list" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from list" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from ls" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from ls" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from ls" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from ls" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from ls" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from get" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from get" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from get" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from get" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from get" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l name -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l type -d 'admin: manages the control plane; workspace: calls the gateway' -r -f -a "admin\t'An organisation service key: manages the control plane'
workspace\t'A workspace service key: calls the gateway'"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l workspace -d 'The workspace (id or slug) a workspace key belongs to [default: ws-default]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l scopes -d 'Comma-separated scopes, e.g. configs.read,configs.list' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l config -d 'A saved config applied to requests that name none' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l metadata -d 'Metadata added to every request made with the key (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l log-bodies -d 'Whether the request log keeps this key\'s request and response bodies' -r -f -a "true\t''
false\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l expires -d 'When the key stops working, from now: 30d, 12h, 1w' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l description -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l budget -d 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l budget-type -d 'What the budget counts' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l period -d 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l alert -d 'Alert (webhook and event) when this percentage of the budget is used' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l rate -d 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l token-rate -d 'A token rate limit (input plus output), e.g. 100000/min (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l models -d 'Models it may use: patterns such as \'@openai-dev/*\' or gpt-4o* (comma-separated, repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l name -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l scopes -d 'Comma-separated scopes, e.g. configs.read,configs.list' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l config -d 'A saved config applied to requests that name none' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l metadata -d 'Metadata added to every request made with the key (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l log-bodies -d 'Whether the request log keeps this key\'s request and response bodies' -r -f -a "true\t''
false\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l expires -d 'When the key stops working, from now: 30d, 12h, 1w' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l description -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l budget -d 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l budget-type -d 'What the budget counts' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l period -d 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l alert -d 'Alert (webhook and event) when this percentage of the budget is used' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l rate -d 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l token-rate -d 'A token rate limit (input plus output), e.g. 100000/min (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l models -d 'Models it may use: patterns such as \'@openai-dev/*\' or gpt-4o* (comma-separated, repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l no-budget -d 'Remove the budget'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l no-rate-limits -d 'Remove the rate limits'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l all-models -d 'Allow every model again'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l reset-usage -d 'Start the budget\'s window over from zero'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from delete" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from delete" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from delete" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from delete" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from delete" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from delete" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from delete" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from delete" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rm" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rm" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rm" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rm" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rm" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rm" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rm" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rm" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rm" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rm" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rotate" -l grace -d 'How long the old secret keeps working, e.g. 24h [default: it stops at once]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rotate" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rotate" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rotate" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rotate" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rotate" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rotate" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rotate" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rotate" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rotate" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from rotate" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "list" -d 'List keys (secrets masked)'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show one key (secret masked)'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a key and print its secret, once'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "update" -d 'Change a key\'s name, scopes, defaults or expiry'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Revoke a key at once'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "rotate" -d 'Give a key a new secret; the old one keeps working for the grace period'
complete -c tollgate -n "__fish_tollgate_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -f -a "list" -d 'List budgets, including those of keys, workspaces and integrations'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -f -a "ls" -d 'List budgets, including those of keys, workspaces and integrations'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -f -a "get" -d 'Show one budget'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -f -a "create" -d 'Create a budget policy'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -f -a "update" -d 'Change a budget\'s limit, period, alert, conditions or status'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -f -a "delete" -d 'Delete a budget'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -f -a "rm" -d 'Delete a budget'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -f -a "status" -d 'Spend, reserved and remaining per budget and group value, and when each resets'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -f -a "reset" -d 'Start a budget\'s current window over from zero'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and not __fish_seen_subcommand_from list ls get create update delete rm status reset help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from list" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from list" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from list" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from list" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from ls" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from ls" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from ls" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from ls" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from ls" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from get" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from get" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from get" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from get" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from get" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -l name -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -l condition -d 'Only requests where KEY matches VALUE (`*` wildcards): api_key, workspace_id, provider (@slug), model, metadata.KEY (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -l group-by -d 'One counter per value of KEY: api_key, workspace_id, provider, model, metadata.KEY (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -l budget -d 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -l budget-type -d 'What the budget counts' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -l period -d 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -l alert -d 'Alert (webhook and event) when this percentage of the budget is used' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -l rate -d 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -l token-rate -d 'A token rate limit (input plus output), e.g. 100000/min (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -l models -d 'Models it may use: patterns such as \'@openai-dev/*\' or gpt-4o* (comma-separated, repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from update" -l name -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from update" -l limit -d 'A new limit' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from update" -l alert -d 'A new alert percentage' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from update" -l status -d 'active, or archived (kept but not enforced)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from update" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from update" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from update" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from update" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from update" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from update" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from update" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from update" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from update" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from delete" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from delete" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from delete" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from delete" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from delete" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from delete" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from delete" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from delete" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from rm" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from rm" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from rm" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from rm" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from rm" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from rm" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from rm" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from rm" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from rm" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from rm" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from status" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from status" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from status" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from status" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from status" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from status" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from status" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from reset" -l value -d 'Only this group value, e.g. metadata._user=alice [default: all of them]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from reset" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from reset" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from reset" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from reset" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from reset" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from reset" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from reset" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from reset" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from reset" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from reset" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from help" -f -a "list" -d 'List budgets, including those of keys, workspaces and integrations'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show one budget'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a budget policy'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from help" -f -a "update" -d 'Change a budget\'s limit, period, alert, conditions or status'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete a budget'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from help" -f -a "status" -d 'Spend, reserved and remaining per budget and group value, and when each resets'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from help" -f -a "reset" -d 'Start a budget\'s current window over from zero'
complete -c tollgate -n "__fish_tollgate_using_subcommand budgets; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "list" -d 'List prompts with their published and latest versions'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "ls" -d 'List prompts with their published and latest versions'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "get" -d 'Show a prompt: the published version, or the one asked for'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "create" -d 'Save a prompt from a YAML or JSON file (name, model, parameters, messages, tools)'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "update" -d 'Add a version to a prompt from a YAML or JSON file (nothing is overwritten)'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "delete" -d 'Delete a prompt and all its versions'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "rm" -d 'Delete a prompt and all its versions'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "versions" -d 'List a prompt\'s versions, newest first, with their labels'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "publish" -d 'Publish a version: requests that name no version or label get it'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "label" -d 'Point a label (production, staging, development or your own) at a version'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "render" -d 'Print the chat body a prompt renders to with the variables given'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "run" -d 'Render a prompt and send it through the gateway; print the answer'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "diff" -d 'Show how two versions of a prompt differ (exit 1 if they do)'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "apply" -d 'Create or update prompts by name from a folder of YAML/JSON files'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "partials" -d 'Reusable template text, included with {{>slug}}'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and not __fish_seen_subcommand_from list ls get create update delete rm versions publish label render run diff apply partials help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from list" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from list" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from list" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from list" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from ls" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from ls" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from ls" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from ls" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from ls" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from get" -l version -d 'The version to show' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from get" -l label -d 'The version a label points at' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from get" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from get" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from get" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from get" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from get" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from create" -s f -l file -d 'The prompt as YAML or JSON, or `-` for standard input' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from create" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from create" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from create" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from create" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from create" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from create" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from update" -s f -l file -d 'The prompt as YAML or JSON, or `-` for standard input' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from update" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from update" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from update" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from update" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from update" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from update" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from update" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from update" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from update" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from delete" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from delete" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from delete" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from delete" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from delete" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from delete" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from delete" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from delete" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from rm" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from rm" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from rm" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from rm" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from rm" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from rm" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from rm" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from rm" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from rm" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from rm" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from versions" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from versions" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from versions" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from versions" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from versions" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from versions" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from versions" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from versions" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from versions" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from versions" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from publish" -l version -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from publish" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from publish" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from publish" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from publish" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from publish" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from publish" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from publish" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from publish" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from publish" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from publish" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from label" -l version -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from label" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from label" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from label" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from label" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from label" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from label" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from label" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from label" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from label" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from label" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from render" -l var -d 'A template variable (repeatable); wins over --vars-file' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from render" -l vars-file -d 'Variables as a YAML or JSON object, or `-` for standard input' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from render" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from render" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from render" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from render" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from render" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from render" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from render" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from render" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from render" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from render" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from run" -l var -d 'A template variable (repeatable); wins over --vars-file' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from run" -l vars-file -d 'Variables as a YAML or JSON object, or `-` for standard input' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from run" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from run" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from run" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from run" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from run" -l stream -d 'Print the answer as it arrives'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from run" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from run" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from run" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from run" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from run" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from diff" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from diff" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from diff" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from diff" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from diff" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from diff" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from diff" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from diff" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from diff" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from diff" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from apply" -s f -l file -d 'A prompt file, a folder of .yaml/.yml/.json prompt files, or `-` for standard input' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from apply" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from apply" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from apply" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from apply" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from apply" -l dry-run -d 'Show the plan without changing anything'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from apply" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from apply" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from apply" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from apply" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from apply" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from apply" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -f -a "list" -d 'List partials'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -f -a "ls" -d 'List partials'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -f -a "get" -d 'Show a partial\'s text (the published version, or --version)'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -f -a "create" -d 'Save a partial'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -f -a "update" -d 'Add a version to a partial'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from partials" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from help" -f -a "list" -d 'List prompts with their published and latest versions'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show a prompt: the published version, or the one asked for'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from help" -f -a "create" -d 'Save a prompt from a YAML or JSON file (name, model, parameters, messages, tools)'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from help" -f -a "update" -d 'Add a version to a prompt from a YAML or JSON file (nothing is overwritten)'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete a prompt and all its versions'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from help" -f -a "versions" -d 'List a prompt\'s versions, newest first, with their labels'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from help" -f -a "publish" -d 'Publish a version: requests that name no version or label get it'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from help" -f -a "label" -d 'Point a label (production, staging, development or your own) at a version'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from help" -f -a "render" -d 'Print the chat body a prompt renders to with the variables given'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from help" -f -a "run" -d 'Render a prompt and send it through the gateway; print the answer'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from help" -f -a "diff" -d 'Show how two versions of a prompt differ (exit 1 if they do)'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from help" -f -a "apply" -d 'Create or update prompts by name from a folder of YAML/JSON files'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from help" -f -a "partials" -d 'Reusable template text, included with {{>slug}}'
complete -c tollgate -n "__fish_tollgate_using_subcommand prompts; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -f -a "list" -d 'List saved guardrails'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -f -a "ls" -d 'List saved guardrails'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -f -a "get" -d 'Show one guardrail, by id or slug'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -f -a "create" -d 'Save a guardrail'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -f -a "update" -d 'Change a guardrail\'s name, checks or actions'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -f -a "delete" -d 'Delete a guardrail no saved config names'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -f -a "rm" -d 'Delete a guardrail no saved config names'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -f -a "test" -d 'Run a guardrail\'s checks on a text, here, and show each verdict; exits 1 if it fails'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and not __fish_seen_subcommand_from list ls get create update delete rm test help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from list" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from list" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from list" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from list" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from ls" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from ls" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from ls" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from ls" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from ls" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from get" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from get" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from get" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from get" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from get" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -l name -d 'The name [required unless the file has one]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -s f -l file -d 'A YAML or JSON document {name, checks, actions} (- for stdin); flags override it' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -l workspace -d 'The workspace (id or slug) [default: the default workspace]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -l check -d 'A check, as ID or ID=PARAMETERS-JSON, e.g. \'regexMatch={"rule":"\\\\d{4}"}\' (a bare name means default.NAME; repeatable; replaces all checks on update)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -l deny -d 'Refuse the request (446) when a check fails' -r -f -a "true\t''
false\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -l async -d 'Run without holding up the request; results are only recorded' -r -f -a "true\t''
false\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -l sequential -d 'Run the checks in order, each on what the one before changed' -r -f -a "true\t''
false\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -l name -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -l check -d 'A check, as ID or ID=PARAMETERS-JSON, e.g. \'regexMatch={"rule":"\\\\d{4}"}\' (a bare name means default.NAME; repeatable; replaces all checks on update)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -l deny -d 'Refuse the request (446) when a check fails' -r -f -a "true\t''
false\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -l async -d 'Run without holding up the request; results are only recorded' -r -f -a "true\t''
false\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -l sequential -d 'Run the checks in order, each on what the one before changed' -r -f -a "true\t''
false\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from delete" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from delete" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from delete" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from delete" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from delete" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from delete" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from delete" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from delete" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from rm" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from rm" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from rm" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from rm" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from rm" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from rm" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from rm" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from rm" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from rm" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from rm" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from test" -l text -d 'The text to check [default: standard input]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from test" -l stage -r -f -a "input\t'As an input guardrail: the text is the last user message'
output\t'As an output guardrail: the text is the model\'s answer'"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from test" -l model -d 'The model the request names (for modelWhitelist)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from test" -l metadata -d 'Request metadata (for requiredMetadataKeys; repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from test" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from test" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from test" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from test" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from test" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from test" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from test" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from test" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from test" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from help" -f -a "list" -d 'List saved guardrails'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show one guardrail, by id or slug'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from help" -f -a "create" -d 'Save a guardrail'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from help" -f -a "update" -d 'Change a guardrail\'s name, checks or actions'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete a guardrail no saved config names'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from help" -f -a "test" -d 'Run a guardrail\'s checks on a text, here, and show each verdict; exits 1 if it fails'
complete -c tollgate -n "__fish_tollgate_using_subcommand guardrails; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "list" -d 'List workspaces'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "ls" -d 'List workspaces'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "get" -d 'Show one workspace, by id or slug'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "create" -d 'Create a workspace'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "update" -d 'Change a workspace\'s name, description, defaults or allowed models'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "delete" -d 'Delete a workspace that has no keys left'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "rm" -d 'Delete a workspace that has no keys left'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and not __fish_seen_subcommand_from list ls get create update delete rm help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from list" -l name -d 'Only workspaces whose name contains this text (any case)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from list" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from list" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from list" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from list" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from ls" -l name -d 'Only workspaces whose name contains this text (any case)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from ls" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from ls" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from ls" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from ls" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from ls" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from get" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from get" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from get" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from get" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from get" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l name -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l slug -d 'The slug [default: ws- and part of the name and six random characters]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l description -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l metadata -d 'Metadata added to every request made with the workspace\'s keys; wins over the key\'s and the request\'s (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l config -d 'A saved config for requests when neither they nor their key name one' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l budget -d 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l budget-type -d 'What the budget counts' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l period -d 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l alert -d 'Alert (webhook and event) when this percentage of the budget is used' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l rate -d 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l token-rate -d 'A token rate limit (input plus output), e.g. 100000/min (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l models -d 'Models it may use: patterns such as \'@openai-dev/*\' or gpt-4o* (comma-separated, repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l name -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l description -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l metadata -d 'Metadata added to every request made with the workspace\'s keys; wins over the key\'s and the request\'s (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l config -d 'A saved config for requests when neither they nor their key name one' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l budget -d 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l budget-type -d 'What the budget counts' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l period -d 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l alert -d 'Alert (webhook and event) when this percentage of the budget is used' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l rate -d 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l token-rate -d 'A token rate limit (input plus output), e.g. 100000/min (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l models -d 'Models it may use: patterns such as \'@openai-dev/*\' or gpt-4o* (comma-separated, repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l no-budget -d 'Remove the budget'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l no-rate-limits -d 'Remove the rate limits'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l all-models -d 'Allow every model again'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l reset-usage -d 'Start the budget\'s window over from zero'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from delete" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from delete" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from delete" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from delete" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from delete" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from delete" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from delete" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from delete" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from rm" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from rm" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from rm" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from rm" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from rm" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from rm" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from rm" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from rm" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from rm" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from rm" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from help" -f -a "list" -d 'List workspaces'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show one workspace, by id or slug'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a workspace'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from help" -f -a "update" -d 'Change a workspace\'s name, description, defaults or allowed models'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete a workspace that has no keys left'
complete -c tollgate -n "__fish_tollgate_using_subcommand workspaces; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and not __fish_seen_subcommand_from stats purge help" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and not __fish_seen_subcommand_from stats purge help" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and not __fish_seen_subcommand_from stats purge help" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and not __fish_seen_subcommand_from stats purge help" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and not __fish_seen_subcommand_from stats purge help" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and not __fish_seen_subcommand_from stats purge help" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and not __fish_seen_subcommand_from stats purge help" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and not __fish_seen_subcommand_from stats purge help" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and not __fish_seen_subcommand_from stats purge help" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and not __fish_seen_subcommand_from stats purge help" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and not __fish_seen_subcommand_from stats purge help" -f -a "stats" -d 'Entries, size and bound; lookups since start by outcome; entries per namespace; the cost cache hits saved'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and not __fish_seen_subcommand_from stats purge help" -f -a "purge" -d 'Delete cached answers, from memory and the store: one namespace\'s, or every one'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and not __fish_seen_subcommand_from stats purge help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from stats" -l since -d 'The window of the cost saved: RFC 3339 or a duration before now (24h, 7d, 2w)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from stats" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from stats" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from stats" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from stats" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from stats" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from stats" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from stats" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from stats" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from stats" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from stats" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from purge" -l namespace -d 'Only the entries cached under this x-portkey-cache-namespace' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from purge" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from purge" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from purge" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from purge" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from purge" -l dry-run -d 'Show what would be sent without sending it'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from purge" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from purge" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from purge" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from purge" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from purge" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from purge" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "stats" -d 'Entries, size and bound; lookups since start by outcome; entries per namespace; the cost cache hits saved'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "purge" -d 'Delete cached answers, from memory and the store: one namespace\'s, or every one'
complete -c tollgate -n "__fish_tollgate_using_subcommand cache; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -f -a "list" -d 'List request records, newest first'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -f -a "ls" -d 'List request records, newest first'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -f -a "get" -d 'Show one record with its request and response bodies'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -f -a "tail" -d 'Print each finished request as it happens, until Ctrl-C; with --since, the earlier ones first'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -f -a "export" -d 'Write every matching record as NDJSON or CSV'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and not __fish_seen_subcommand_from list ls get tail export help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l since -d 'Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l until -d 'Only records before this time: RFC 3339 or a duration before now' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l model -d 'The model, e.g. gpt-4o' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l provider -d 'The provider, e.g. openai' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l status -d 'A status code (429) or class (5xx)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l user -d 'The user (metadata _user)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l key -d 'The API key that made the request, by id or name' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l metadata -d 'A metadata value the records must carry (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l trace-id -d 'Only the records of this trace' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l min-cost -d 'Only records that cost at least this much, in USD' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l limit -d 'How many records to show (1 to 1000)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l cursor -d 'Continue where an earlier list stopped (it prints the cursor on stderr)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l since -d 'Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l until -d 'Only records before this time: RFC 3339 or a duration before now' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l model -d 'The model, e.g. gpt-4o' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l provider -d 'The provider, e.g. openai' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l status -d 'A status code (429) or class (5xx)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l user -d 'The user (metadata _user)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l key -d 'The API key that made the request, by id or name' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l metadata -d 'A metadata value the records must carry (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l trace-id -d 'Only the records of this trace' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l min-cost -d 'Only records that cost at least this much, in USD' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l limit -d 'How many records to show (1 to 1000)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l cursor -d 'Continue where an earlier list stopped (it prints the cursor on stderr)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from get" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from get" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from get" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from get" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from get" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from get" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -l since -d 'Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -l until -d 'Only records before this time: RFC 3339 or a duration before now' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -l model -d 'The model, e.g. gpt-4o' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -l provider -d 'The provider, e.g. openai' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -l status -d 'A status code (429) or class (5xx)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -l user -d 'The user (metadata _user)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -l key -d 'The API key that made the request, by id or name' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -l metadata -d 'A metadata value the records must carry (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -l trace-id -d 'Only the records of this trace' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -l min-cost -d 'Only records that cost at least this much, in USD' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from tail" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l since -d 'Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l until -d 'Only records before this time: RFC 3339 or a duration before now' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l model -d 'The model, e.g. gpt-4o' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l provider -d 'The provider, e.g. openai' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l status -d 'A status code (429) or class (5xx)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l user -d 'The user (metadata _user)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l key -d 'The API key that made the request, by id or name' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l metadata -d 'A metadata value the records must carry (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l trace-id -d 'Only the records of this trace' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l min-cost -d 'Only records that cost at least this much, in USD' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l format -r -f -a "ndjson\t'One JSON record per line'
csv\t'A fixed column list with a header row; metadata and bodies as JSON text'"
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l out -d 'Write to this file, which appears only when the export is complete [default: stdout]' -r -F
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l include-bodies -d 'Include each record\'s request and response bodies'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from export" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from help" -f -a "list" -d 'List request records, newest first'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from help" -f -a "get" -d 'Show one record with its request and response bodies'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from help" -f -a "tail" -d 'Print each finished request as it happens, until Ctrl-C; with --since, the earlier ones first'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write every matching record as NDJSON or CSV'
complete -c tollgate -n "__fish_tollgate_using_subcommand logs; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and not __fish_seen_subcommand_from show help" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and not __fish_seen_subcommand_from show help" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and not __fish_seen_subcommand_from show help" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and not __fish_seen_subcommand_from show help" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and not __fish_seen_subcommand_from show help" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and not __fish_seen_subcommand_from show help" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and not __fish_seen_subcommand_from show help" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and not __fish_seen_subcommand_from show help" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and not __fish_seen_subcommand_from show help" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and not __fish_seen_subcommand_from show help" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and not __fish_seen_subcommand_from show help" -f -a "show" -d 'Show a trace\'s spans as a tree with a timing waterfall'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and not __fish_seen_subcommand_from show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and __fish_seen_subcommand_from show" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and __fish_seen_subcommand_from show" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and __fish_seen_subcommand_from show" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and __fish_seen_subcommand_from show" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and __fish_seen_subcommand_from show" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and __fish_seen_subcommand_from show" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and __fish_seen_subcommand_from show" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and __fish_seen_subcommand_from show" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show a trace\'s spans as a tree with a timing waterfall'
complete -c tollgate -n "__fish_tollgate_using_subcommand trace; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and not __fish_seen_subcommand_from list ls help" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and not __fish_seen_subcommand_from list ls help" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and not __fish_seen_subcommand_from list ls help" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and not __fish_seen_subcommand_from list ls help" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and not __fish_seen_subcommand_from list ls help" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and not __fish_seen_subcommand_from list ls help" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and not __fish_seen_subcommand_from list ls help" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and not __fish_seen_subcommand_from list ls help" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and not __fish_seen_subcommand_from list ls help" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and not __fish_seen_subcommand_from list ls help" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and not __fish_seen_subcommand_from list ls help" -f -a "list" -d 'List admin changes, newest first: who, what, when, from where, and the status'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and not __fish_seen_subcommand_from list ls help" -f -a "ls" -d 'List admin changes, newest first: who, what, when, from where, and the status'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and not __fish_seen_subcommand_from list ls help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l since -d 'Only changes since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 1d)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l until -d 'Only changes before this time: RFC 3339 or a duration before now' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l action -d 'create, update, delete or rotate' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l resource-type -d 'The route\'s resource: integrations, configs, api-keys, ...' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l actor -d 'Only the changes made with this API key' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l limit -d 'How many changes to show (1 to 1000)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -l since -d 'Only changes since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 1d)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -l until -d 'Only changes before this time: RFC 3339 or a duration before now' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -l action -d 'create, update, delete or rotate' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -l resource-type -d 'The route\'s resource: integrations, configs, api-keys, ...' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -l actor -d 'Only the changes made with this API key' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -l limit -d 'How many changes to show (1 to 1000)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "list" -d 'List admin changes, newest first: who, what, when, from where, and the status'
complete -c tollgate -n "__fish_tollgate_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -l by -d 'What to group by: model, provider, user, key, metadata.KEY, or time:INTERVAL (e.g. time:1h, one row per hour)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -l since -d 'Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -l until -d 'Only records before this time: RFC 3339 or a duration before now' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -l model -d 'The model, e.g. gpt-4o' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -l provider -d 'The provider, e.g. openai' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -l status -d 'A status code (429) or class (5xx)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -l user -d 'The user (metadata _user)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -l key -d 'The API key that made the request, by id or name' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -l metadata -d 'A metadata value the records must carry (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -l trace-id -d 'Only the records of this trace' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -l min-cost -d 'Only records that cost at least this much, in USD' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand usage" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -s m -l model -d 'The model, e.g. @openai-dev/gpt-4o (may be left to the config)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -l config -d 'A saved config (pc-...) or a config file (YAML or JSON)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -l metadata -d 'Request metadata (repeatable)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -l trace-id -r
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -l system -d 'A system message' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -l temperature -r
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -l max-tokens -r
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand chat" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -f -a "add" -d 'Add (or change) a context'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -f -a "use" -d 'Make a context the current one'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -f -a "list" -d 'List contexts'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -f -a "ls" -d 'List contexts'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -f -a "remove" -d 'Remove a context and its stored key'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -f -a "rm" -d 'Remove a context and its stored key'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and not __fish_seen_subcommand_from add use list ls remove rm help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from add" -l url -r
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from add" -l default-output -d 'This context\'s default output format' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from add" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from add" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from add" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from add" -l use -d 'Make it the current context'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from add" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from add" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from add" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from use" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from use" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from use" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from use" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from use" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from use" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from use" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from use" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from use" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from use" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from list" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from list" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from list" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from list" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from list" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from ls" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from ls" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from ls" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from ls" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from ls" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from ls" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from ls" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from ls" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from ls" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from remove" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from remove" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from remove" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from remove" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from remove" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from remove" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from rm" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from rm" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from rm" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from rm" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from rm" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from rm" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from rm" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from rm" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from rm" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add (or change) a context'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from help" -f -a "use" -d 'Make a context the current one'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from help" -f -a "list" -d 'List contexts'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a context and its stored key'
complete -c tollgate -n "__fish_tollgate_using_subcommand context; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand login" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand login" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand login" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand login" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand login" -l with-token -d 'Read the key from standard input (the default when stdin is not a terminal)'
complete -c tollgate -n "__fish_tollgate_using_subcommand login" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand login" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand login" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand login" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand login" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand login" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand logout" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logout" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand logout" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand logout" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand logout" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand logout" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand logout" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand logout" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand logout" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand logout" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand whoami" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand whoami" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand whoami" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand whoami" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand whoami" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand whoami" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand whoami" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand whoami" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand whoami" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand whoami" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand status" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand status" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand status" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand status" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand status" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand status" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand status" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand status" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand status" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand status" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and not __fish_seen_subcommand_from migrate status copy help" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and not __fish_seen_subcommand_from migrate status copy help" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and not __fish_seen_subcommand_from migrate status copy help" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and not __fish_seen_subcommand_from migrate status copy help" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and not __fish_seen_subcommand_from migrate status copy help" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and not __fish_seen_subcommand_from migrate status copy help" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and not __fish_seen_subcommand_from migrate status copy help" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and not __fish_seen_subcommand_from migrate status copy help" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and not __fish_seen_subcommand_from migrate status copy help" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and not __fish_seen_subcommand_from migrate status copy help" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and not __fish_seen_subcommand_from migrate status copy help" -f -a "migrate" -d 'Apply the store\'s pending schema migrations (`serve` also does on start)'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and not __fish_seen_subcommand_from migrate status copy help" -f -a "status" -d 'Show the store\'s backend, schema version, rows per table and, on Postgres, the request records\' partitions; migrates nothing'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and not __fish_seen_subcommand_from migrate status copy help" -f -a "copy" -d 'Copy a SQLite store into a new Postgres database, in one transaction, with the row counts checked at the end'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and not __fish_seen_subcommand_from migrate status copy help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -l data-dir -d 'Where the SQLite database and master key live [default: $XDG_DATA_HOME/tollgate]' -r -F
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -l database-url -d 'The Postgres database that holds everything, instead of SQLite in the data dir, e.g. postgres://tollgate@db.internal/tollgate (docs/postgres.md); empty means SQLite' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from migrate" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from status" -l data-dir -d 'Where the SQLite database and master key live [default: $XDG_DATA_HOME/tollgate]' -r -F
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from status" -l database-url -d 'The Postgres database that holds everything, instead of SQLite in the data dir, e.g. postgres://tollgate@db.internal/tollgate (docs/postgres.md); empty means SQLite' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from status" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from status" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from status" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from status" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from status" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from status" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from status" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from copy" -l from -d 'The SQLite store: sqlite:PATH, PATH being a data dir or its tollgate.db' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from copy" -l to -d 'The Postgres database to fill, new or empty (its schema is made first), e.g. postgres://tollgate:PASSWORD@db.internal/tollgate' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from copy" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from copy" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from copy" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from copy" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from copy" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from copy" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from copy" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from copy" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from copy" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from copy" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "migrate" -d 'Apply the store\'s pending schema migrations (`serve` also does on start)'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "status" -d 'Show the store\'s backend, schema version, rows per table and, on Postgres, the request records\' partitions; migrates nothing'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "copy" -d 'Copy a SQLite store into a new Postgres database, in one transaction, with the row counts checked at the end'
complete -c tollgate -n "__fish_tollgate_using_subcommand db; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand api" -s d -l data -d 'A JSON body; @FILE reads it from a file, @- from standard input' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand api" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand api" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand api" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand api" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand api" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand api" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand api" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand api" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand api" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand api" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand completions" -l context -d 'Which control plane to talk to (a context added with `tollgate context add`)' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand completions" -l url -d 'The control plane\'s address, overriding the context\'s' -r
complete -c tollgate -n "__fish_tollgate_using_subcommand completions" -s o -l output -d 'Output format [default: table, or the context\'s]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand completions" -l color -d 'When to use colour (NO_COLOR also turns it off)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tollgate -n "__fish_tollgate_using_subcommand completions" -s q -l quiet -d 'Print less on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand completions" -s v -l verbose -d 'Print more on stderr'
complete -c tollgate -n "__fish_tollgate_using_subcommand completions" -s y -l yes -d 'Skip confirmations'
complete -c tollgate -n "__fish_tollgate_using_subcommand completions" -l no-input -d 'Never prompt; fail with a hint naming the flag to pass instead'
complete -c tollgate -n "__fish_tollgate_using_subcommand completions" -s h -l help -d 'Print help'
complete -c tollgate -n "__fish_tollgate_using_subcommand completions" -s V -l version -d 'Print version'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "serve" -d 'Run the control plane and gateway'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "integrations" -d 'Provider credentials'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "configs" -d 'Routing configs (Portkey config JSON), versioned'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "keys" -d 'API keys for the gateway and the admin API'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "budgets" -d 'Budgets: spend limits per key, workspace, integration, user or any metadata'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "prompts" -d 'Prompts: versioned Mustache templates, labels, partials; render and run them'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "guardrails" -d 'Guardrails: checks on requests and answers (PII, regex, JSON schema, webhooks, ...); try one on a text with `guardrails test`'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "workspaces" -d 'Workspaces: groups of keys sharing default metadata, config and allowed models'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "cache" -d 'The response cache: stats, purge'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "logs" -d 'Request records: list, show, follow live, export'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "trace" -d 'Traces: the spans of an agent run or a request, as a tree with timings'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "audit" -d 'The audit log of admin changes: who changed what, when, from where'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "usage" -d 'Requests, errors, tokens, cost and latency per model, provider, user, key or metadata value, over the last 7 days unless --since says otherwise'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "chat" -d 'Send a chat request through the gateway and stream the answer'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "context" -d 'Named control planes (URL + stored credential)'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "login" -d 'Store an API key for the current context, after checking it with the server'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "logout" -d 'Forget the stored API key of the current context'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "whoami" -d 'Show the calling key: name, type and scopes'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "status" -d 'Show the control plane\'s address, version and health, and who you are'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "db" -d 'The store itself: schema migrations, status, and copying SQLite into Postgres'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "api" -d 'Send a raw authenticated request to the control plane'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "completions" -d 'Print shell completions'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and not __fish_seen_subcommand_from serve integrations configs keys budgets prompts guardrails workspaces cache logs trace audit usage chat context login logout whoami status db api completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from integrations" -f -a "list" -d 'List integrations'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from integrations" -f -a "get" -d 'Show one integration (its key masked)'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from integrations" -f -a "create" -d 'Store a provider\'s credential under a slug'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from integrations" -f -a "update" -d 'Change an integration\'s name, base URL, description or key'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from integrations" -f -a "delete" -d 'Delete an integration'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from configs" -f -a "list" -d 'List saved configs'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from configs" -f -a "get" -d 'Show a config (`-o yaml` output can be fed back to `apply`)'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from configs" -f -a "create" -d 'Save a config from a YAML or JSON file'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from configs" -f -a "update" -d 'Change a config; every update makes a new version'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from configs" -f -a "delete" -d 'Delete a config and its versions'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from configs" -f -a "versions" -d 'List a config\'s versions, newest first'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from configs" -f -a "validate" -d 'Check a config file without a server'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from configs" -f -a "apply" -d 'Create or update configs by name from a file, a folder of files, or stdin'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from configs" -f -a "diff" -d 'Show how a file differs from the saved config of the same name (exit 1 if it does)'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "list" -d 'List keys (secrets masked)'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "get" -d 'Show one key (secret masked)'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "create" -d 'Create a key and print its secret, once'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "update" -d 'Change a key\'s name, scopes, defaults or expiry'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "delete" -d 'Revoke a key at once'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "rotate" -d 'Give a key a new secret; the old one keeps working for the grace period'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from budgets" -f -a "list" -d 'List budgets, including those of keys, workspaces and integrations'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from budgets" -f -a "get" -d 'Show one budget'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from budgets" -f -a "create" -d 'Create a budget policy'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from budgets" -f -a "update" -d 'Change a budget\'s limit, period, alert, conditions or status'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from budgets" -f -a "delete" -d 'Delete a budget'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from budgets" -f -a "status" -d 'Spend, reserved and remaining per budget and group value, and when each resets'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from budgets" -f -a "reset" -d 'Start a budget\'s current window over from zero'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from prompts" -f -a "list" -d 'List prompts with their published and latest versions'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from prompts" -f -a "get" -d 'Show a prompt: the published version, or the one asked for'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from prompts" -f -a "create" -d 'Save a prompt from a YAML or JSON file (name, model, parameters, messages, tools)'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from prompts" -f -a "update" -d 'Add a version to a prompt from a YAML or JSON file (nothing is overwritten)'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from prompts" -f -a "delete" -d 'Delete a prompt and all its versions'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from prompts" -f -a "versions" -d 'List a prompt\'s versions, newest first, with their labels'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from prompts" -f -a "publish" -d 'Publish a version: requests that name no version or label get it'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from prompts" -f -a "label" -d 'Point a label (production, staging, development or your own) at a version'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from prompts" -f -a "render" -d 'Print the chat body a prompt renders to with the variables given'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from prompts" -f -a "run" -d 'Render a prompt and send it through the gateway; print the answer'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from prompts" -f -a "diff" -d 'Show how two versions of a prompt differ (exit 1 if they do)'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from prompts" -f -a "apply" -d 'Create or update prompts by name from a folder of YAML/JSON files'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from prompts" -f -a "partials" -d 'Reusable template text, included with {{>slug}}'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from guardrails" -f -a "list" -d 'List saved guardrails'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from guardrails" -f -a "get" -d 'Show one guardrail, by id or slug'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from guardrails" -f -a "create" -d 'Save a guardrail'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from guardrails" -f -a "update" -d 'Change a guardrail\'s name, checks or actions'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from guardrails" -f -a "delete" -d 'Delete a guardrail no saved config names'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from guardrails" -f -a "test" -d 'Run a guardrail\'s checks on a text, here, and show each verdict; exits 1 if it fails'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from workspaces" -f -a "list" -d 'List workspaces'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from workspaces" -f -a "get" -d 'Show one workspace, by id or slug'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from workspaces" -f -a "create" -d 'Create a workspace'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from workspaces" -f -a "update" -d 'Change a workspace\'s name, description, defaults or allowed models'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from workspaces" -f -a "delete" -d 'Delete a workspace that has no keys left'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from cache" -f -a "stats" -d 'Entries, size and bound; lookups since start by outcome; entries per namespace; the cost cache hits saved'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from cache" -f -a "purge" -d 'Delete cached answers, from memory and the store: one namespace\'s, or every one'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from logs" -f -a "list" -d 'List request records, newest first'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from logs" -f -a "get" -d 'Show one record with its request and response bodies'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from logs" -f -a "tail" -d 'Print each finished request as it happens, until Ctrl-C; with --since, the earlier ones first'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from logs" -f -a "export" -d 'Write every matching record as NDJSON or CSV'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from trace" -f -a "show" -d 'Show a trace\'s spans as a tree with a timing waterfall'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "list" -d 'List admin changes, newest first: who, what, when, from where, and the status'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from context" -f -a "add" -d 'Add (or change) a context'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from context" -f -a "use" -d 'Make a context the current one'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from context" -f -a "list" -d 'List contexts'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from context" -f -a "remove" -d 'Remove a context and its stored key'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "migrate" -d 'Apply the store\'s pending schema migrations (`serve` also does on start)'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "status" -d 'Show the store\'s backend, schema version, rows per table and, on Postgres, the request records\' partitions; migrates nothing'
complete -c tollgate -n "__fish_tollgate_using_subcommand help; and __fish_seen_subcommand_from db" -f -a "copy" -d 'Copy a SQLite store into a new Postgres database, in one transaction, with the row counts checked at the end'
