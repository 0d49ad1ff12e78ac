
use builtin;
use str;

set edit:completion:arg-completer[tollgate] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'tollgate'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'tollgate'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Run the control plane and gateway'
            cand integrations 'Provider credentials'
            cand configs 'Routing configs (Portkey config JSON), versioned'
            cand keys 'API keys for the gateway and the admin API'
            cand budgets 'Budgets: spend limits per key, workspace, integration, user or any metadata'
            cand prompts 'Prompts: versioned Mustache templates, labels, partials; render and run them'
            cand guardrails 'Guardrails: checks on requests and answers (PII, regex, JSON schema, webhooks, ...); try one on a text with `guardrails test`'
            cand workspaces 'Workspaces: groups of keys sharing default metadata, config and allowed models'
            cand cache 'The response cache: stats, purge'
            cand logs 'Request records: list, show, follow live, export'
            cand trace 'Traces: the spans of an agent run or a request, as a tree with timings'
            cand audit 'The audit log of admin changes: who changed what, when, from where'
            cand usage 'Requests, errors, tokens, cost and latency per model, provider, user, key or metadata value, over the last 7 days unless --since says otherwise'
            cand chat 'Send a chat request through the gateway and stream the answer'
            cand context 'Named control planes (URL + stored credential)'
            cand login 'Store an API key for the current context, after checking it with the server'
            cand logout 'Forget the stored API key of the current context'
            cand whoami 'Show the calling key: name, type and scopes'
            cand status 'Show the control plane''s address, version and health, and who you are'
            cand db 'The store itself: schema migrations, status, and copying SQLite into Postgres'
            cand api 'Send a raw authenticated request to the control plane'
            cand completions 'Print shell completions'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;serve'= {
            cand --addr 'Address to listen on'
            cand --data-dir 'Where the SQLite database and master key live [default: $XDG_DATA_HOME/tollgate]'
            cand --database-url 'The Postgres database that holds everything, instead of SQLite in the data dir, e.g. postgres://tollgate@db.internal/tollgate (docs/postgres.md); empty means SQLite'
            cand --retry-base-ms 'The first retry of a failed upstream call waits about this long, doubling each time'
            cand --log-bodies 'Whether request records keep request and response bodies (a key can also turn it off)'
            cand --log-retention 'Delete request records older than this, e.g. 30d [default: keep them all]'
            cand --otlp-endpoint 'Send every request record as OpenTelemetry spans to this OTLP/HTTP receiver, e.g. http://127.0.0.1:4318'
            cand --otlp-header 'A header for the OTLP receiver, e.g. for its authentication (repeatable)'
            cand --alert-webhook 'Post budget alerts (a budget''s alert threshold or its limit reached) to this URL as JSON'
            cand --cache-size 'The most the response cache keeps in memory, in megabytes (the least recently used answers are evicted first)'
            cand --record-queue-limit 'While the database is unavailable, hold up to this many request records in memory and write them when it is back; later ones are dropped and counted (docs/postgres.md)'
            cand --record-queue-mb 'The most memory those held records may take, in megabytes (bodies included)'
            cand --lb-seed 'Seed load balancing''s random choices (for reproducible tests)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;integrations'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List integrations'
            cand ls 'List integrations'
            cand get 'Show one integration (its key masked)'
            cand create 'Store a provider''s credential under a slug'
            cand update 'Change an integration''s name, base URL, description or key'
            cand delete 'Delete an integration'
            cand rm 'Delete an integration'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;integrations;list'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;integrations;ls'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;integrations;get'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;integrations;create'= {
            cand --slug 'The slug requests use, as in `@openai-dev/gpt-4o`'
            cand --provider 'The provider (`openai`, `anthropic`, `google`, `bedrock`, ...)'
            cand --name 'A display name [default: the slug]'
            cand --base-url 'Send requests to this base URL instead of the provider''s'
            cand --description 'description'
            cand --budget 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412'
            cand --budget-type 'What the budget counts'
            cand --period 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]'
            cand --alert 'Alert (webhook and event) when this percentage of the budget is used'
            cand --rate 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)'
            cand --token-rate 'A token rate limit (input plus output), e.g. 100000/min (repeatable)'
            cand --models 'Models it may use: patterns such as ''@openai-dev/*'' or gpt-4o* (comma-separated, repeatable)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --api-key-stdin 'Read the provider''s API key from standard input instead of a hidden prompt'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;integrations;update'= {
            cand --name 'name'
            cand --base-url 'A new base URL; an empty string removes it'
            cand --description 'description'
            cand --budget 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412'
            cand --budget-type 'What the budget counts'
            cand --period 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]'
            cand --alert 'Alert (webhook and event) when this percentage of the budget is used'
            cand --rate 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)'
            cand --token-rate 'A token rate limit (input plus output), e.g. 100000/min (repeatable)'
            cand --models 'Models it may use: patterns such as ''@openai-dev/*'' or gpt-4o* (comma-separated, repeatable)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --api-key-stdin 'Replace the API key with one read from standard input'
            cand --prompt-api-key 'Replace the API key with one typed at a hidden prompt'
            cand --no-budget 'Remove the budget'
            cand --no-rate-limits 'Remove the rate limits'
            cand --all-models 'Allow every model again'
            cand --reset-usage 'Start the budget''s window over from zero'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;integrations;delete'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;integrations;rm'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;integrations;help'= {
            cand list 'List integrations'
            cand get 'Show one integration (its key masked)'
            cand create 'Store a provider''s credential under a slug'
            cand update 'Change an integration''s name, base URL, description or key'
            cand delete 'Delete an integration'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;integrations;help;list'= {
        }
        &'tollgate;integrations;help;get'= {
        }
        &'tollgate;integrations;help;create'= {
        }
        &'tollgate;integrations;help;update'= {
        }
        &'tollgate;integrations;help;delete'= {
        }
        &'tollgate;integrations;help;help'= {
        }
        &'tollgate;configs'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List saved configs'
            cand ls 'List saved configs'
            cand get 'Show a config (`-o yaml` output can be fed back to `apply`)'
            cand create 'Save a config from a YAML or JSON file'
            cand update 'Change a config; every update makes a new version'
            cand delete 'Delete a config and its versions'
            cand rm 'Delete a config and its versions'
            cand versions 'List a config''s versions, newest first'
            cand validate 'Check a config file without a server'
            cand apply 'Create or update configs by name from a file, a folder of files, or stdin'
            cand diff 'Show how a file differs from the saved config of the same name (exit 1 if it does)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;configs;list'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;configs;ls'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;configs;get'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;configs;create'= {
            cand --name 'name'
            cand -f 'The config as YAML or JSON, or `-` for standard input'
            cand --file 'The config as YAML or JSON, or `-` for standard input'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;configs;update'= {
            cand -f 'The new config as YAML or JSON, or `-` for standard input'
            cand --file 'The new config as YAML or JSON, or `-` for standard input'
            cand --name 'name'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;configs;delete'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;configs;rm'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;configs;versions'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;configs;validate'= {
            cand -f 'A YAML or JSON file, or `-` for standard input'
            cand --file 'A YAML or JSON file, or `-` for standard input'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;configs;apply'= {
            cand -f 'A file, a folder of .yaml/.yml/.json files, or `-` for standard input'
            cand --file 'A file, a folder of .yaml/.yml/.json files, or `-` for standard input'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show the plan without changing anything'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;configs;diff'= {
            cand -f 'A YAML or JSON file, or `-` for standard input'
            cand --file 'A YAML or JSON file, or `-` for standard input'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;configs;help'= {
            cand list 'List saved configs'
            cand get 'Show a config (`-o yaml` output can be fed back to `apply`)'
            cand create 'Save a config from a YAML or JSON file'
            cand update 'Change a config; every update makes a new version'
            cand delete 'Delete a config and its versions'
            cand versions 'List a config''s versions, newest first'
            cand validate 'Check a config file without a server'
            cand apply 'Create or update configs by name from a file, a folder of files, or stdin'
            cand diff 'Show how a file differs from the saved config of the same name (exit 1 if it does)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;configs;help;list'= {
        }
        &'tollgate;configs;help;get'= {
        }
        &'tollgate;configs;help;create'= {
        }
        &'tollgate;configs;help;update'= {
        }
        &'tollgate;configs;help;delete'= {
        }
        &'tollgate;configs;help;versions'= {
        }
        &'tollgate;configs;help;validate'= {
        }
        &'tollgate;configs;help;apply'= {
        }
        &'tollgate;configs;help;diff'= {
        }
        &'tollgate;configs;help;help'= {
        }
        &'tollgate;keys'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List keys (secrets masked)'
            cand ls 'List keys (secrets masked)'
            cand get 'Show one key (secret masked)'
            cand create 'Create a key and print its secret, once'
            cand update 'Change a key''s name, scopes, defaults or expiry'
            cand delete 'Revoke a key at once'
            cand rm 'Revoke a key at once'
            cand rotate 'Give a key a new secret; the old one keeps working for the grace period'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;keys;list'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;keys;ls'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;keys;get'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;keys;create'= {
            cand --name 'name'
            cand --type 'admin: manages the control plane; workspace: calls the gateway'
            cand --workspace 'The workspace (id or slug) a workspace key belongs to [default: ws-default]'
            cand --scopes 'Comma-separated scopes, e.g. configs.read,configs.list'
            cand --config 'A saved config applied to requests that name none'
            cand --metadata 'Metadata added to every request made with the key (repeatable)'
            cand --log-bodies 'Whether the request log keeps this key''s request and response bodies'
            cand --expires 'When the key stops working, from now: 30d, 12h, 1w'
            cand --description 'description'
            cand --budget 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412'
            cand --budget-type 'What the budget counts'
            cand --period 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]'
            cand --alert 'Alert (webhook and event) when this percentage of the budget is used'
            cand --rate 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)'
            cand --token-rate 'A token rate limit (input plus output), e.g. 100000/min (repeatable)'
            cand --models 'Models it may use: patterns such as ''@openai-dev/*'' or gpt-4o* (comma-separated, repeatable)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;keys;update'= {
            cand --name 'name'
            cand --scopes 'Comma-separated scopes, e.g. configs.read,configs.list'
            cand --config 'A saved config applied to requests that name none'
            cand --metadata 'Metadata added to every request made with the key (repeatable)'
            cand --log-bodies 'Whether the request log keeps this key''s request and response bodies'
            cand --expires 'When the key stops working, from now: 30d, 12h, 1w'
            cand --description 'description'
            cand --budget 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412'
            cand --budget-type 'What the budget counts'
            cand --period 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]'
            cand --alert 'Alert (webhook and event) when this percentage of the budget is used'
            cand --rate 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)'
            cand --token-rate 'A token rate limit (input plus output), e.g. 100000/min (repeatable)'
            cand --models 'Models it may use: patterns such as ''@openai-dev/*'' or gpt-4o* (comma-separated, repeatable)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand --no-budget 'Remove the budget'
            cand --no-rate-limits 'Remove the rate limits'
            cand --all-models 'Allow every model again'
            cand --reset-usage 'Start the budget''s window over from zero'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;keys;delete'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;keys;rm'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;keys;rotate'= {
            cand --grace 'How long the old secret keeps working, e.g. 24h [default: it stops at once]'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;keys;help'= {
            cand list 'List keys (secrets masked)'
            cand get 'Show one key (secret masked)'
            cand create 'Create a key and print its secret, once'
            cand update 'Change a key''s name, scopes, defaults or expiry'
            cand delete 'Revoke a key at once'
            cand rotate 'Give a key a new secret; the old one keeps working for the grace period'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;keys;help;list'= {
        }
        &'tollgate;keys;help;get'= {
        }
        &'tollgate;keys;help;create'= {
        }
        &'tollgate;keys;help;update'= {
        }
        &'tollgate;keys;help;delete'= {
        }
        &'tollgate;keys;help;rotate'= {
        }
        &'tollgate;keys;help;help'= {
        }
        &'tollgate;budgets'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List budgets, including those of keys, workspaces and integrations'
            cand ls 'List budgets, including those of keys, workspaces and integrations'
            cand get 'Show one budget'
            cand create 'Create a budget policy'
            cand update 'Change a budget''s limit, period, alert, conditions or status'
            cand delete 'Delete a budget'
            cand rm 'Delete a budget'
            cand status 'Spend, reserved and remaining per budget and group value, and when each resets'
            cand reset 'Start a budget''s current window over from zero'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;budgets;list'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;budgets;ls'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;budgets;get'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;budgets;create'= {
            cand --name 'name'
            cand --condition 'Only requests where KEY matches VALUE (`*` wildcards): api_key, workspace_id, provider (@slug), model, metadata.KEY (repeatable)'
            cand --group-by 'One counter per value of KEY: api_key, workspace_id, provider, model, metadata.KEY (repeatable)'
            cand --budget 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412'
            cand --budget-type 'What the budget counts'
            cand --period 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]'
            cand --alert 'Alert (webhook and event) when this percentage of the budget is used'
            cand --rate 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)'
            cand --token-rate 'A token rate limit (input plus output), e.g. 100000/min (repeatable)'
            cand --models 'Models it may use: patterns such as ''@openai-dev/*'' or gpt-4o* (comma-separated, repeatable)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;budgets;update'= {
            cand --name 'name'
            cand --limit 'A new limit'
            cand --alert 'A new alert percentage'
            cand --status 'active, or archived (kept but not enforced)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;budgets;delete'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;budgets;rm'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;budgets;status'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;budgets;reset'= {
            cand --value 'Only this group value, e.g. metadata._user=alice [default: all of them]'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;budgets;help'= {
            cand list 'List budgets, including those of keys, workspaces and integrations'
            cand get 'Show one budget'
            cand create 'Create a budget policy'
            cand update 'Change a budget''s limit, period, alert, conditions or status'
            cand delete 'Delete a budget'
            cand status 'Spend, reserved and remaining per budget and group value, and when each resets'
            cand reset 'Start a budget''s current window over from zero'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;budgets;help;list'= {
        }
        &'tollgate;budgets;help;get'= {
        }
        &'tollgate;budgets;help;create'= {
        }
        &'tollgate;budgets;help;update'= {
        }
        &'tollgate;budgets;help;delete'= {
        }
        &'tollgate;budgets;help;status'= {
        }
        &'tollgate;budgets;help;reset'= {
        }
        &'tollgate;budgets;help;help'= {
        }
        &'tollgate;prompts'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List prompts with their published and latest versions'
            cand ls 'List prompts with their published and latest versions'
            cand get 'Show a prompt: the published version, or the one asked for'
            cand create 'Save a prompt from a YAML or JSON file (name, model, parameters, messages, tools)'
            cand update 'Add a version to a prompt from a YAML or JSON file (nothing is overwritten)'
            cand delete 'Delete a prompt and all its versions'
            cand rm 'Delete a prompt and all its versions'
            cand versions 'List a prompt''s versions, newest first, with their labels'
            cand publish 'Publish a version: requests that name no version or label get it'
            cand label 'Point a label (production, staging, development or your own) at a version'
            cand render 'Print the chat body a prompt renders to with the variables given'
            cand run 'Render a prompt and send it through the gateway; print the answer'
            cand diff 'Show how two versions of a prompt differ (exit 1 if they do)'
            cand apply 'Create or update prompts by name from a folder of YAML/JSON files'
            cand partials 'Reusable template text, included with {{>slug}}'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;prompts;list'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;prompts;ls'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;prompts;get'= {
            cand --version 'The version to show'
            cand --label 'The version a label points at'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'tollgate;prompts;create'= {
            cand -f 'The prompt as YAML or JSON, or `-` for standard input'
            cand --file 'The prompt as YAML or JSON, or `-` for standard input'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;prompts;update'= {
            cand -f 'The prompt as YAML or JSON, or `-` for standard input'
            cand --file 'The prompt as YAML or JSON, or `-` for standard input'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;prompts;delete'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;prompts;rm'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;prompts;versions'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;prompts;publish'= {
            cand --version 'version'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'tollgate;prompts;label'= {
            cand --version 'version'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'tollgate;prompts;render'= {
            cand --var 'A template variable (repeatable); wins over --vars-file'
            cand --vars-file 'Variables as a YAML or JSON object, or `-` for standard input'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;prompts;run'= {
            cand --var 'A template variable (repeatable); wins over --vars-file'
            cand --vars-file 'Variables as a YAML or JSON object, or `-` for standard input'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --stream 'Print the answer as it arrives'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;prompts;diff'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;prompts;apply'= {
            cand -f 'A prompt file, a folder of .yaml/.yml/.json prompt files, or `-` for standard input'
            cand --file 'A prompt file, a folder of .yaml/.yml/.json prompt files, or `-` for standard input'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show the plan without changing anything'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;prompts;partials'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List partials'
            cand ls 'List partials'
            cand get 'Show a partial''s text (the published version, or --version)'
            cand create 'Save a partial'
            cand update 'Add a version to a partial'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;prompts;partials;list'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;prompts;partials;ls'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;prompts;partials;get'= {
            cand --version 'version'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'tollgate;prompts;partials;create'= {
            cand --name 'name'
            cand -f 'The text from a file, or `-` for standard input'
            cand --file 'The text from a file, or `-` for standard input'
            cand --string 'The text itself'
            cand --description 'What this version changes'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;prompts;partials;update'= {
            cand --name 'name'
            cand -f 'The text from a file, or `-` for standard input'
            cand --file 'The text from a file, or `-` for standard input'
            cand --string 'The text itself'
            cand --description 'What this version changes'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;prompts;partials;help'= {
            cand list 'List partials'
            cand get 'Show a partial''s text (the published version, or --version)'
            cand create 'Save a partial'
            cand update 'Add a version to a partial'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;prompts;partials;help;list'= {
        }
        &'tollgate;prompts;partials;help;get'= {
        }
        &'tollgate;prompts;partials;help;create'= {
        }
        &'tollgate;prompts;partials;help;update'= {
        }
        &'tollgate;prompts;partials;help;help'= {
        }
        &'tollgate;prompts;help'= {
            cand list 'List prompts with their published and latest versions'
            cand get 'Show a prompt: the published version, or the one asked for'
            cand create 'Save a prompt from a YAML or JSON file (name, model, parameters, messages, tools)'
            cand update 'Add a version to a prompt from a YAML or JSON file (nothing is overwritten)'
            cand delete 'Delete a prompt and all its versions'
            cand versions 'List a prompt''s versions, newest first, with their labels'
            cand publish 'Publish a version: requests that name no version or label get it'
            cand label 'Point a label (production, staging, development or your own) at a version'
            cand render 'Print the chat body a prompt renders to with the variables given'
            cand run 'Render a prompt and send it through the gateway; print the answer'
            cand diff 'Show how two versions of a prompt differ (exit 1 if they do)'
            cand apply 'Create or update prompts by name from a folder of YAML/JSON files'
            cand partials 'Reusable template text, included with {{>slug}}'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;prompts;help;list'= {
        }
        &'tollgate;prompts;help;get'= {
        }
        &'tollgate;prompts;help;create'= {
        }
        &'tollgate;prompts;help;update'= {
        }
        &'tollgate;prompts;help;delete'= {
        }
        &'tollgate;prompts;help;versions'= {
        }
        &'tollgate;prompts;help;publish'= {
        }
        &'tollgate;prompts;help;label'= {
        }
        &'tollgate;prompts;help;render'= {
        }
        &'tollgate;prompts;help;run'= {
        }
        &'tollgate;prompts;help;diff'= {
        }
        &'tollgate;prompts;help;apply'= {
        }
        &'tollgate;prompts;help;partials'= {
            cand list 'List partials'
            cand get 'Show a partial''s text (the published version, or --version)'
            cand create 'Save a partial'
            cand update 'Add a version to a partial'
        }
        &'tollgate;prompts;help;partials;list'= {
        }
        &'tollgate;prompts;help;partials;get'= {
        }
        &'tollgate;prompts;help;partials;create'= {
        }
        &'tollgate;prompts;help;partials;update'= {
        }
        &'tollgate;prompts;help;help'= {
        }
        &'tollgate;guardrails'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List saved guardrails'
            cand ls 'List saved guardrails'
            cand get 'Show one guardrail, by id or slug'
            cand create 'Save a guardrail'
            cand update 'Change a guardrail''s name, checks or actions'
            cand delete 'Delete a guardrail no saved config names'
            cand rm 'Delete a guardrail no saved config names'
            cand test 'Run a guardrail''s checks on a text, here, and show each verdict; exits 1 if it fails'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;guardrails;list'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;guardrails;ls'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;guardrails;get'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;guardrails;create'= {
            cand --name 'The name [required unless the file has one]'
            cand -f 'A YAML or JSON document {name, checks, actions} (- for stdin); flags override it'
            cand --file 'A YAML or JSON document {name, checks, actions} (- for stdin); flags override it'
            cand --workspace 'The workspace (id or slug) [default: the default workspace]'
            cand --check 'A check, as ID or ID=PARAMETERS-JSON, e.g. ''regexMatch={"rule":"\\d{4}"}'' (a bare name means default.NAME; repeatable; replaces all checks on update)'
            cand --deny 'Refuse the request (446) when a check fails'
            cand --async 'Run without holding up the request; results are only recorded'
            cand --sequential 'Run the checks in order, each on what the one before changed'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;guardrails;update'= {
            cand --name 'name'
            cand --check 'A check, as ID or ID=PARAMETERS-JSON, e.g. ''regexMatch={"rule":"\\d{4}"}'' (a bare name means default.NAME; repeatable; replaces all checks on update)'
            cand --deny 'Refuse the request (446) when a check fails'
            cand --async 'Run without holding up the request; results are only recorded'
            cand --sequential 'Run the checks in order, each on what the one before changed'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;guardrails;delete'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;guardrails;rm'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;guardrails;test'= {
            cand --text 'The text to check [default: standard input]'
            cand --stage 'stage'
            cand --model 'The model the request names (for modelWhitelist)'
            cand --metadata 'Request metadata (for requiredMetadataKeys; repeatable)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;guardrails;help'= {
            cand list 'List saved guardrails'
            cand get 'Show one guardrail, by id or slug'
            cand create 'Save a guardrail'
            cand update 'Change a guardrail''s name, checks or actions'
            cand delete 'Delete a guardrail no saved config names'
            cand test 'Run a guardrail''s checks on a text, here, and show each verdict; exits 1 if it fails'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;guardrails;help;list'= {
        }
        &'tollgate;guardrails;help;get'= {
        }
        &'tollgate;guardrails;help;create'= {
        }
        &'tollgate;guardrails;help;update'= {
        }
        &'tollgate;guardrails;help;delete'= {
        }
        &'tollgate;guardrails;help;test'= {
        }
        &'tollgate;guardrails;help;help'= {
        }
        &'tollgate;workspaces'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List workspaces'
            cand ls 'List workspaces'
            cand get 'Show one workspace, by id or slug'
            cand create 'Create a workspace'
            cand update 'Change a workspace''s name, description, defaults or allowed models'
            cand delete 'Delete a workspace that has no keys left'
            cand rm 'Delete a workspace that has no keys left'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;workspaces;list'= {
            cand --name 'Only workspaces whose name contains this text (any case)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;workspaces;ls'= {
            cand --name 'Only workspaces whose name contains this text (any case)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;workspaces;get'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;workspaces;create'= {
            cand --name 'name'
            cand --slug 'The slug [default: ws- and part of the name and six random characters]'
            cand --description 'description'
            cand --metadata 'Metadata added to every request made with the workspace''s keys; wins over the key''s and the request''s (repeatable)'
            cand --config 'A saved config for requests when neither they nor their key name one'
            cand --budget 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412'
            cand --budget-type 'What the budget counts'
            cand --period 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]'
            cand --alert 'Alert (webhook and event) when this percentage of the budget is used'
            cand --rate 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)'
            cand --token-rate 'A token rate limit (input plus output), e.g. 100000/min (repeatable)'
            cand --models 'Models it may use: patterns such as ''@openai-dev/*'' or gpt-4o* (comma-separated, repeatable)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;workspaces;update'= {
            cand --name 'name'
            cand --description 'description'
            cand --metadata 'Metadata added to every request made with the workspace''s keys; wins over the key''s and the request''s (repeatable)'
            cand --config 'A saved config for requests when neither they nor their key name one'
            cand --budget 'A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412'
            cand --budget-type 'What the budget counts'
            cand --period 'When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]'
            cand --alert 'Alert (webhook and event) when this percentage of the budget is used'
            cand --rate 'A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)'
            cand --token-rate 'A token rate limit (input plus output), e.g. 100000/min (repeatable)'
            cand --models 'Models it may use: patterns such as ''@openai-dev/*'' or gpt-4o* (comma-separated, repeatable)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand --no-budget 'Remove the budget'
            cand --no-rate-limits 'Remove the rate limits'
            cand --all-models 'Allow every model again'
            cand --reset-usage 'Start the budget''s window over from zero'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;workspaces;delete'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;workspaces;rm'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;workspaces;help'= {
            cand list 'List workspaces'
            cand get 'Show one workspace, by id or slug'
            cand create 'Create a workspace'
            cand update 'Change a workspace''s name, description, defaults or allowed models'
            cand delete 'Delete a workspace that has no keys left'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;workspaces;help;list'= {
        }
        &'tollgate;workspaces;help;get'= {
        }
        &'tollgate;workspaces;help;create'= {
        }
        &'tollgate;workspaces;help;update'= {
        }
        &'tollgate;workspaces;help;delete'= {
        }
        &'tollgate;workspaces;help;help'= {
        }
        &'tollgate;cache'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand stats 'Entries, size and bound; lookups since start by outcome; entries per namespace; the cost cache hits saved'
            cand purge 'Delete cached answers, from memory and the store: one namespace''s, or every one'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;cache;stats'= {
            cand --since 'The window of the cost saved: RFC 3339 or a duration before now (24h, 7d, 2w)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;cache;purge'= {
            cand --namespace 'Only the entries cached under this x-portkey-cache-namespace'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --dry-run 'Show what would be sent without sending it'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;cache;help'= {
            cand stats 'Entries, size and bound; lookups since start by outcome; entries per namespace; the cost cache hits saved'
            cand purge 'Delete cached answers, from memory and the store: one namespace''s, or every one'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;cache;help;stats'= {
        }
        &'tollgate;cache;help;purge'= {
        }
        &'tollgate;cache;help;help'= {
        }
        &'tollgate;logs'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List request records, newest first'
            cand ls 'List request records, newest first'
            cand get 'Show one record with its request and response bodies'
            cand tail 'Print each finished request as it happens, until Ctrl-C; with --since, the earlier ones first'
            cand export 'Write every matching record as NDJSON or CSV'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;logs;list'= {
            cand --since 'Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)'
            cand --until 'Only records before this time: RFC 3339 or a duration before now'
            cand --model 'The model, e.g. gpt-4o'
            cand --provider 'The provider, e.g. openai'
            cand --status 'A status code (429) or class (5xx)'
            cand --user 'The user (metadata _user)'
            cand --key 'The API key that made the request, by id or name'
            cand --metadata 'A metadata value the records must carry (repeatable)'
            cand --trace-id 'Only the records of this trace'
            cand --min-cost 'Only records that cost at least this much, in USD'
            cand --limit 'How many records to show (1 to 1000)'
            cand --cursor 'Continue where an earlier list stopped (it prints the cursor on stderr)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;logs;ls'= {
            cand --since 'Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)'
            cand --until 'Only records before this time: RFC 3339 or a duration before now'
            cand --model 'The model, e.g. gpt-4o'
            cand --provider 'The provider, e.g. openai'
            cand --status 'A status code (429) or class (5xx)'
            cand --user 'The user (metadata _user)'
            cand --key 'The API key that made the request, by id or name'
            cand --metadata 'A metadata value the records must carry (repeatable)'
            cand --trace-id 'Only the records of this trace'
            cand --min-cost 'Only records that cost at least this much, in USD'
            cand --limit 'How many records to show (1 to 1000)'
            cand --cursor 'Continue where an earlier list stopped (it prints the cursor on stderr)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;logs;get'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;logs;tail'= {
            cand --since 'Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)'
            cand --until 'Only records before this time: RFC 3339 or a duration before now'
            cand --model 'The model, e.g. gpt-4o'
            cand --provider 'The provider, e.g. openai'
            cand --status 'A status code (429) or class (5xx)'
            cand --user 'The user (metadata _user)'
            cand --key 'The API key that made the request, by id or name'
            cand --metadata 'A metadata value the records must carry (repeatable)'
            cand --trace-id 'Only the records of this trace'
            cand --min-cost 'Only records that cost at least this much, in USD'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;logs;export'= {
            cand --since 'Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)'
            cand --until 'Only records before this time: RFC 3339 or a duration before now'
            cand --model 'The model, e.g. gpt-4o'
            cand --provider 'The provider, e.g. openai'
            cand --status 'A status code (429) or class (5xx)'
            cand --user 'The user (metadata _user)'
            cand --key 'The API key that made the request, by id or name'
            cand --metadata 'A metadata value the records must carry (repeatable)'
            cand --trace-id 'Only the records of this trace'
            cand --min-cost 'Only records that cost at least this much, in USD'
            cand --format 'format'
            cand --out 'Write to this file, which appears only when the export is complete [default: stdout]'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --include-bodies 'Include each record''s request and response bodies'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;logs;help'= {
            cand list 'List request records, newest first'
            cand get 'Show one record with its request and response bodies'
            cand tail 'Print each finished request as it happens, until Ctrl-C; with --since, the earlier ones first'
            cand export 'Write every matching record as NDJSON or CSV'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;logs;help;list'= {
        }
        &'tollgate;logs;help;get'= {
        }
        &'tollgate;logs;help;tail'= {
        }
        &'tollgate;logs;help;export'= {
        }
        &'tollgate;logs;help;help'= {
        }
        &'tollgate;trace'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand show 'Show a trace''s spans as a tree with a timing waterfall'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;trace;show'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;trace;help'= {
            cand show 'Show a trace''s spans as a tree with a timing waterfall'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;trace;help;show'= {
        }
        &'tollgate;trace;help;help'= {
        }
        &'tollgate;audit'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List admin changes, newest first: who, what, when, from where, and the status'
            cand ls 'List admin changes, newest first: who, what, when, from where, and the status'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;audit;list'= {
            cand --since 'Only changes since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 1d)'
            cand --until 'Only changes before this time: RFC 3339 or a duration before now'
            cand --action 'create, update, delete or rotate'
            cand --resource-type 'The route''s resource: integrations, configs, api-keys, ...'
            cand --actor 'Only the changes made with this API key'
            cand --limit 'How many changes to show (1 to 1000)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;audit;ls'= {
            cand --since 'Only changes since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 1d)'
            cand --until 'Only changes before this time: RFC 3339 or a duration before now'
            cand --action 'create, update, delete or rotate'
            cand --resource-type 'The route''s resource: integrations, configs, api-keys, ...'
            cand --actor 'Only the changes made with this API key'
            cand --limit 'How many changes to show (1 to 1000)'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;audit;help'= {
            cand list 'List admin changes, newest first: who, what, when, from where, and the status'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;audit;help;list'= {
        }
        &'tollgate;audit;help;help'= {
        }
        &'tollgate;usage'= {
            cand --by 'What to group by: model, provider, user, key, metadata.KEY, or time:INTERVAL (e.g. time:1h, one row per hour)'
            cand --since 'Only records since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 7d)'
            cand --until 'Only records before this time: RFC 3339 or a duration before now'
            cand --model 'The model, e.g. gpt-4o'
            cand --provider 'The provider, e.g. openai'
            cand --status 'A status code (429) or class (5xx)'
            cand --user 'The user (metadata _user)'
            cand --key 'The API key that made the request, by id or name'
            cand --metadata 'A metadata value the records must carry (repeatable)'
            cand --trace-id 'Only the records of this trace'
            cand --min-cost 'Only records that cost at least this much, in USD'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;chat'= {
            cand -m 'The model, e.g. @openai-dev/gpt-4o (may be left to the config)'
            cand --model 'The model, e.g. @openai-dev/gpt-4o (may be left to the config)'
            cand --config 'A saved config (pc-...) or a config file (YAML or JSON)'
            cand --metadata 'Request metadata (repeatable)'
            cand --trace-id 'trace-id'
            cand --system 'A system message'
            cand --temperature 'temperature'
            cand --max-tokens 'max-tokens'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;context'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand add 'Add (or change) a context'
            cand use 'Make a context the current one'
            cand list 'List contexts'
            cand ls 'List contexts'
            cand remove 'Remove a context and its stored key'
            cand rm 'Remove a context and its stored key'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;context;add'= {
            cand --url 'url'
            cand --default-output 'This context''s default output format'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --use 'Make it the current context'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;context;use'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;context;list'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;context;ls'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;context;remove'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;context;rm'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;context;help'= {
            cand add 'Add (or change) a context'
            cand use 'Make a context the current one'
            cand list 'List contexts'
            cand remove 'Remove a context and its stored key'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;context;help;add'= {
        }
        &'tollgate;context;help;use'= {
        }
        &'tollgate;context;help;list'= {
        }
        &'tollgate;context;help;remove'= {
        }
        &'tollgate;context;help;help'= {
        }
        &'tollgate;login'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand --with-token 'Read the key from standard input (the default when stdin is not a terminal)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;logout'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;whoami'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;status'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;db'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand migrate 'Apply the store''s pending schema migrations (`serve` also does on start)'
            cand status 'Show the store''s backend, schema version, rows per table and, on Postgres, the request records'' partitions; migrates nothing'
            cand copy 'Copy a SQLite store into a new Postgres database, in one transaction, with the row counts checked at the end'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;db;migrate'= {
            cand --data-dir 'Where the SQLite database and master key live [default: $XDG_DATA_HOME/tollgate]'
            cand --database-url 'The Postgres database that holds everything, instead of SQLite in the data dir, e.g. postgres://tollgate@db.internal/tollgate (docs/postgres.md); empty means SQLite'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;db;status'= {
            cand --data-dir 'Where the SQLite database and master key live [default: $XDG_DATA_HOME/tollgate]'
            cand --database-url 'The Postgres database that holds everything, instead of SQLite in the data dir, e.g. postgres://tollgate@db.internal/tollgate (docs/postgres.md); empty means SQLite'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;db;copy'= {
            cand --from 'The SQLite store: sqlite:PATH, PATH being a data dir or its tollgate.db'
            cand --to 'The Postgres database to fill, new or empty (its schema is made first), e.g. postgres://tollgate:PASSWORD@db.internal/tollgate'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;db;help'= {
            cand migrate 'Apply the store''s pending schema migrations (`serve` also does on start)'
            cand status 'Show the store''s backend, schema version, rows per table and, on Postgres, the request records'' partitions; migrates nothing'
            cand copy 'Copy a SQLite store into a new Postgres database, in one transaction, with the row counts checked at the end'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;db;help;migrate'= {
        }
        &'tollgate;db;help;status'= {
        }
        &'tollgate;db;help;copy'= {
        }
        &'tollgate;db;help;help'= {
        }
        &'tollgate;api'= {
            cand -d 'A JSON body; @FILE reads it from a file, @- from standard input'
            cand --data 'A JSON body; @FILE reads it from a file, @- from standard input'
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;completions'= {
            cand --context 'Which control plane to talk to (a context added with `tollgate context add`)'
            cand --url 'The control plane''s address, overriding the context''s'
            cand -o 'Output format [default: table, or the context''s]'
            cand --output 'Output format [default: table, or the context''s]'
            cand --color 'When to use colour (NO_COLOR also turns it off)'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr'
            cand --verbose 'Print more on stderr'
            cand -y 'Skip confirmations'
            cand --yes 'Skip confirmations'
            cand --no-input 'Never prompt; fail with a hint naming the flag to pass instead'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'tollgate;help'= {
            cand serve 'Run the control plane and gateway'
            cand integrations 'Provider credentials'
            cand configs 'Routing configs (Portkey config JSON), versioned'
            cand keys 'API keys for the gateway and the admin API'
            cand budgets 'Budgets: spend limits per key, workspace, integration, user or any metadata'
            cand prompts 'Prompts: versioned Mustache templates, labels, partials; render and run them'
            cand guardrails 'Guardrails: checks on requests and answers (PII, regex, JSON schema, webhooks, ...); try one on a text with `guardrails test`'
            cand workspaces 'Workspaces: groups of keys sharing default metadata, config and allowed models'
            cand cache 'The response cache: stats, purge'
            cand logs 'Request records: list, show, follow live, export'
            cand trace 'Traces: the spans of an agent run or a request, as a tree with timings'
            cand audit 'The audit log of admin changes: who changed what, when, from where'
            cand usage 'Requests, errors, tokens, cost and latency per model, provider, user, key or metadata value, over the last 7 days unless --since says otherwise'
            cand chat 'Send a chat request through the gateway and stream the answer'
            cand context 'Named control planes (URL + stored credential)'
            cand login 'Store an API key for the current context, after checking it with the server'
            cand logout 'Forget the stored API key of the current context'
            cand whoami 'Show the calling key: name, type and scopes'
            cand status 'Show the control plane''s address, version and health, and who you are'
            cand db 'The store itself: schema migrations, status, and copying SQLite into Postgres'
            cand api 'Send a raw authenticated request to the control plane'
            cand completions 'Print shell completions'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'tollgate;help;serve'= {
        }
        &'tollgate;help;integrations'= {
            cand list 'List integrations'
            cand get 'Show one integration (its key masked)'
            cand create 'Store a provider''s credential under a slug'
            cand update 'Change an integration''s name, base URL, description or key'
            cand delete 'Delete an integration'
        }
        &'tollgate;help;integrations;list'= {
        }
        &'tollgate;help;integrations;get'= {
        }
        &'tollgate;help;integrations;create'= {
        }
        &'tollgate;help;integrations;update'= {
        }
        &'tollgate;help;integrations;delete'= {
        }
        &'tollgate;help;configs'= {
            cand list 'List saved configs'
            cand get 'Show a config (`-o yaml` output can be fed back to `apply`)'
            cand create 'Save a config from a YAML or JSON file'
            cand update 'Change a config; every update makes a new version'
            cand delete 'Delete a config and its versions'
            cand versions 'List a config''s versions, newest first'
            cand validate 'Check a config file without a server'
            cand apply 'Create or update configs by name from a file, a folder of files, or stdin'
            cand diff 'Show how a file differs from the saved config of the same name (exit 1 if it does)'
        }
        &'tollgate;help;configs;list'= {
        }
        &'tollgate;help;configs;get'= {
        }
        &'tollgate;help;configs;create'= {
        }
        &'tollgate;help;configs;update'= {
        }
        &'tollgate;help;configs;delete'= {
        }
        &'tollgate;help;configs;versions'= {
        }
        &'tollgate;help;configs;validate'= {
        }
        &'tollgate;help;configs;apply'= {
        }
        &'tollgate;help;configs;diff'= {
        }
        &'tollgate;help;keys'= {
            cand list 'List keys (secrets masked)'
            cand get 'Show one key (secret masked)'
            cand create 'Create a key and print its secret, once'
            cand update 'Change a key''s name, scopes, defaults or expiry'
            cand delete 'Revoke a key at once'
            cand rotate 'Give a key a new secret; the old one keeps working for the grace period'
        }
        &'tollgate;help;keys;list'= {
        }
        &'tollgate;help;keys;get'= {
        }
        &'tollgate;help;keys;create'= {
        }
        &'tollgate;help;keys;update'= {
        }
        &'tollgate;help;keys;delete'= {
        }
        &'tollgate;help;keys;rotate'= {
        }
        &'tollgate;help;budgets'= {
            cand list 'List budgets, including those of keys, workspaces and integrations'
            cand get 'Show one budget'
            cand create 'Create a budget policy'
            cand update 'Change a budget''s limit, period, alert, conditions or status'
            cand delete 'Delete a budget'
            cand status 'Spend, reserved and remaining per budget and group value, and when each resets'
            cand reset 'Start a budget''s current window over from zero'
        }
        &'tollgate;help;budgets;list'= {
        }
        &'tollgate;help;budgets;get'= {
        }
        &'tollgate;help;budgets;create'= {
        }
        &'tollgate;help;budgets;update'= {
        }
        &'tollgate;help;budgets;delete'= {
        }
        &'tollgate;help;budgets;status'= {
        }
        &'tollgate;help;budgets;reset'= {
        }
        &'tollgate;help;prompts'= {
            cand list 'List prompts with their published and latest versions'
            cand get 'Show a prompt: the published version, or the one asked for'
            cand create 'Save a prompt from a YAML or JSON file (name, model, parameters, messages, tools)'
            cand update 'Add a version to a prompt from a YAML or JSON file (nothing is overwritten)'
            cand delete 'Delete a prompt and all its versions'
            cand versions 'List a prompt''s versions, newest first, with their labels'
            cand publish 'Publish a version: requests that name no version or label get it'
            cand label 'Point a label (production, staging, development or your own) at a version'
            cand render 'Print the chat body a prompt renders to with the variables given'
            cand run 'Render a prompt and send it through the gateway; print the answer'
            cand diff 'Show how two versions of a prompt differ (exit 1 if they do)'
            cand apply 'Create or update prompts by name from a folder of YAML/JSON files'
            cand partials 'Reusable template text, included with {{>slug}}'
        }
        &'tollgate;help;prompts;list'= {
        }
        &'tollgate;help;prompts;get'= {
        }
        &'tollgate;help;prompts;create'= {
        }
        &'tollgate;help;prompts;update'= {
        }
        &'tollgate;help;prompts;delete'= {
        }
        &'tollgate;help;prompts;versions'= {
        }
        &'tollgate;help;prompts;publish'= {
        }
        &'tollgate;help;prompts;label'= {
        }
        &'tollgate;help;prompts;render'= {
        }
        &'tollgate;help;prompts;run'= {
        }
        &'tollgate;help;prompts;diff'= {
        }
        &'tollgate;help;prompts;apply'= {
        }
        &'tollgate;help;prompts;partials'= {
            cand list 'List partials'
            cand get 'Show a partial''s text (the published version, or --version)'
            cand create 'Save a partial'
            cand update 'Add a version to a partial'
        }
        &'tollgate;help;prompts;partials;list'= {
        }
        &'tollgate;help;prompts;partials;get'= {
        }
        &'tollgate;help;prompts;partials;create'= {
        }
        &'tollgate;help;prompts;partials;update'= {
        }
        &'tollgate;help;guardrails'= {
            cand list 'List saved guardrails'
            cand get 'Show one guardrail, by id or slug'
            cand create 'Save a guardrail'
            cand update 'Change a guardrail''s name, checks or actions'
            cand delete 'Delete a guardrail no saved config names'
            cand test 'Run a guardrail''s checks on a text, here, and show each verdict; exits 1 if it fails'
        }
        &'tollgate;help;guardrails;list'= {
        }
        &'tollgate;help;guardrails;get'= {
        }
        &'tollgate;help;guardrails;create'= {
        }
        &'tollgate;help;guardrails;update'= {
        }
        &'tollgate;help;guardrails;delete'= {
        }
        &'tollgate;help;guardrails;test'= {
        }
        &'tollgate;help;workspaces'= {
            cand list 'List workspaces'
            cand get 'Show one workspace, by id or slug'
            cand create 'Create a workspace'
            cand update 'Change a workspace''s name, description, defaults or allowed models'
            cand delete 'Delete a workspace that has no keys left'
        }
        &'tollgate;help;workspaces;list'= {
        }
        &'tollgate;help;workspaces;get'= {
        }
        &'tollgate;help;workspaces;create'= {
        }
        &'tollgate;help;workspaces;update'= {
        }
        &'tollgate;help;workspaces;delete'= {
        }
        &'tollgate;help;cache'= {
            cand stats 'Entries, size and bound; lookups since start by outcome; entries per namespace; the cost cache hits saved'
            cand purge 'Delete cached answers, from memory and the store: one namespace''s, or every one'
        }
        &'tollgate;help;cache;stats'= {
        }
        &'tollgate;help;cache;purge'= {
        }
        &'tollgate;help;logs'= {
            cand list 'List request records, newest first'
            cand get 'Show one record with its request and response bodies'
            cand tail 'Print each finished request as it happens, until Ctrl-C; with --since, the earlier ones first'
            cand export 'Write every matching record as NDJSON or CSV'
        }
        &'tollgate;help;logs;list'= {
        }
        &'tollgate;help;logs;get'= {
        }
        &'tollgate;help;logs;tail'= {
        }
        &'tollgate;help;logs;export'= {
        }
        &'tollgate;help;trace'= {
            cand show 'Show a trace''s spans as a tree with a timing waterfall'
        }
        &'tollgate;help;trace;show'= {
        }
        &'tollgate;help;audit'= {
            cand list 'List admin changes, newest first: who, what, when, from where, and the status'
        }
        &'tollgate;help;audit;list'= {
        }
        &'tollgate;help;usage'= {
        }
        &'tollgate;help;chat'= {
        }
        &'tollgate;help;context'= {
            cand add 'Add (or change) a context'
            cand use 'Make a context the current one'
            cand list 'List contexts'
            cand remove 'Remove a context and its stored key'
        }
        &'tollgate;help;context;add'= {
        }
        &'tollgate;help;context;use'= {
        }
        &'tollgate;help;context;list'= {
        }
        &'tollgate;help;context;remove'= {
        }
        &'tollgate;help;login'= {
        }
        &'tollgate;help;logout'= {
        }
        &'tollgate;help;whoami'= {
        }
        &'tollgate;help;status'= {
        }
        &'tollgate;help;db'= {
            cand migrate 'Apply the store''s pending schema migrations (`serve` also does on start)'
            cand status 'Show the store''s backend, schema version, rows per table and, on Postgres, the request records'' partitions; migrates nothing'
            cand copy 'Copy a SQLite store into a new Postgres database, in one transaction, with the row counts checked at the end'
        }
        &'tollgate;help;db;migrate'= {
        }
        &'tollgate;help;db;status'= {
        }
        &'tollgate;help;db;copy'= {
        }
        &'tollgate;help;api'= {
        }
        &'tollgate;help;completions'= {
        }
        &'tollgate;help;help'= {
        }
    ]
    $completions[$command]
}
