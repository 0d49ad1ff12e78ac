use std::cell::RefCell;

use serde_json::{json, Value};

use super::*;

/// (name, data as JSON, template, expected output): a case of the Mustache spec.
type Case = (&'static str, &'static str, &'static str, &'static str);

/// A spec case that also needs partials, as (name, template).
type PartialCase = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

/// A resolver over `(key, template)` pairs, where a pinned version is keyed `name@version`.
fn resolver<'a>(
    partials: &'a [(&'a str, &'a str)],
) -> impl Fn(&str, Option<u32>) -> Option<String> + 'a {
    move |name, version| {
        let key = match version {
            Some(version) => format!("{name}@{version}"),
            None => name.to_string(),
        };
        partials
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, template)| template.to_string())
    }
}

fn run(data: &str, template: &str, partials: &[(&str, &str)]) -> Result<String, RenderErrors> {
    let vars: Value = serde_json::from_str(data).expect("case data is JSON");
    render(template, &vars, &resolver(partials))
}

fn check(cases: &[Case]) {
    for (name, data, template, expected) in cases {
        assert_eq!(run(data, template, &[]).as_deref(), Ok(*expected), "{name}");
    }
}

fn errors(data: &str, template: &str, partials: &[(&str, &str)]) -> Vec<String> {
    run(data, template, partials).expect_err(template).0
}

const INTERPOLATION: &[Case] = &[
    (
        "No Interpolation",
        "{}",
        "Hello from {Mustache}!\n",
        "Hello from {Mustache}!\n",
    ),
    (
        "Basic Interpolation",
        r#"{"subject":"world"}"#,
        "Hello, {{subject}}!\n",
        "Hello, world!\n",
    ),
    (
        "No Re-interpolation",
        r#"{"template":"{{planet}}","planet":"Earth"}"#,
        "{{template}}: {{planet}}",
        "{{planet}}: Earth",
    ),
    // Adapted: prompts are not HTML, so nothing is escaped.
    (
        "HTML Escaping",
        r#"{"forbidden":"& \" < >"}"#,
        "These characters should not be HTML escaped: {{forbidden}}\n",
        "These characters should not be HTML escaped: & \" < >\n",
    ),
    (
        "Triple Mustache",
        r#"{"forbidden":"& \" < >"}"#,
        "These characters should not be HTML escaped: {{{forbidden}}}\n",
        "These characters should not be HTML escaped: & \" < >\n",
    ),
    (
        "Ampersand",
        r#"{"forbidden":"& \" < >"}"#,
        "These characters should not be HTML escaped: {{&forbidden}}\n",
        "These characters should not be HTML escaped: & \" < >\n",
    ),
    (
        "Basic Integer Interpolation",
        r#"{"mph":85}"#,
        "\"{{mph}} miles an hour!\"",
        "\"85 miles an hour!\"",
    ),
    (
        "Triple Mustache Integer Interpolation",
        r#"{"mph":85}"#,
        "\"{{{mph}}} miles an hour!\"",
        "\"85 miles an hour!\"",
    ),
    (
        "Ampersand Integer Interpolation",
        r#"{"mph":85}"#,
        "\"{{&mph}} miles an hour!\"",
        "\"85 miles an hour!\"",
    ),
    (
        "Basic Decimal Interpolation",
        r#"{"power":1.210}"#,
        "\"{{power}} jiggawatts!\"",
        "\"1.21 jiggawatts!\"",
    ),
    (
        "Triple Mustache Decimal Interpolation",
        r#"{"power":1.210}"#,
        "\"{{{power}}} jiggawatts!\"",
        "\"1.21 jiggawatts!\"",
    ),
    (
        "Ampersand Decimal Interpolation",
        r#"{"power":1.210}"#,
        "\"{{&power}} jiggawatts!\"",
        "\"1.21 jiggawatts!\"",
    ),
    (
        "Basic Null Interpolation",
        r#"{"cannot":null}"#,
        "I ({{cannot}}) be seen!",
        "I () be seen!",
    ),
    (
        "Triple Mustache Null Interpolation",
        r#"{"cannot":null}"#,
        "I ({{{cannot}}}) be seen!",
        "I () be seen!",
    ),
    (
        "Ampersand Null Interpolation",
        r#"{"cannot":null}"#,
        "I ({{&cannot}}) be seen!",
        "I () be seen!",
    ),
    (
        "Dotted Names - Basic Interpolation",
        r#"{"person":{"name":"Joe"}}"#,
        "\"{{person.name}}\" == \"{{#person}}{{name}}{{/person}}\"",
        "\"Joe\" == \"Joe\"",
    ),
    (
        "Dotted Names - Triple Mustache Interpolation",
        r#"{"person":{"name":"Joe"}}"#,
        "\"{{{person.name}}}\" == \"{{#person}}{{{name}}}{{/person}}\"",
        "\"Joe\" == \"Joe\"",
    ),
    (
        "Dotted Names - Ampersand Interpolation",
        r#"{"person":{"name":"Joe"}}"#,
        "\"{{&person.name}}\" == \"{{#person}}{{&name}}{{/person}}\"",
        "\"Joe\" == \"Joe\"",
    ),
    (
        "Dotted Names - Arbitrary Depth",
        r#"{"a":{"b":{"c":{"d":{"e":{"name":"Phil"}}}}}}"#,
        "\"{{a.b.c.d.e.name}}\" == \"Phil\"",
        "\"Phil\" == \"Phil\"",
    ),
    (
        "Dotted Names - Initial Resolution",
        r#"{"a":{"b":{"c":{"d":{"e":{"name":"Phil"}}}}},"b":{"c":{"d":{"e":{"name":"Wrong"}}}}}"#,
        "\"{{#a}}{{b.c.d.e.name}}{{/a}}\" == \"Phil\"",
        "\"Phil\" == \"Phil\"",
    ),
    (
        "Dotted Names - No Masking",
        r#"{"a.b":"c","a":{"b":"d"}}"#,
        "{{a.b}}",
        "d",
    ),
    (
        "Implicit Iterators - Basic Interpolation",
        r#""world""#,
        "Hello, {{.}}!\n",
        "Hello, world!\n",
    ),
    // Adapted: not escaped.
    (
        "Implicit Iterators - HTML Escaping",
        r#""& \" < >""#,
        "These characters should not be HTML escaped: {{.}}\n",
        "These characters should not be HTML escaped: & \" < >\n",
    ),
    (
        "Implicit Iterators - Triple Mustache",
        r#""& \" < >""#,
        "These characters should not be HTML escaped: {{{.}}}\n",
        "These characters should not be HTML escaped: & \" < >\n",
    ),
    (
        "Implicit Iterators - Ampersand",
        r#""& \" < >""#,
        "These characters should not be HTML escaped: {{&.}}\n",
        "These characters should not be HTML escaped: & \" < >\n",
    ),
    (
        "Implicit Iterators - Basic Integer Interpolation",
        "85",
        "\"{{.}} miles an hour!\"",
        "\"85 miles an hour!\"",
    ),
    (
        "Interpolation - Surrounding Whitespace",
        r#"{"string":"---"}"#,
        "| {{string}} |",
        "| --- |",
    ),
    (
        "Triple Mustache - Surrounding Whitespace",
        r#"{"string":"---"}"#,
        "| {{{string}}} |",
        "| --- |",
    ),
    (
        "Ampersand - Surrounding Whitespace",
        r#"{"string":"---"}"#,
        "| {{&string}} |",
        "| --- |",
    ),
    (
        "Interpolation - Standalone",
        r#"{"string":"---"}"#,
        "  {{string}}\n",
        "  ---\n",
    ),
    (
        "Triple Mustache - Standalone",
        r#"{"string":"---"}"#,
        "  {{{string}}}\n",
        "  ---\n",
    ),
    (
        "Ampersand - Standalone",
        r#"{"string":"---"}"#,
        "  {{&string}}\n",
        "  ---\n",
    ),
    (
        "Interpolation With Padding",
        r#"{"string":"---"}"#,
        "|{{ string }}|",
        "|---|",
    ),
    (
        "Triple Mustache With Padding",
        r#"{"string":"---"}"#,
        "|{{{ string }}}|",
        "|---|",
    ),
    (
        "Ampersand With Padding",
        r#"{"string":"---"}"#,
        "|{{& string }}|",
        "|---|",
    ),
];

/// The spec's interpolation cases whose lookup fails: it renders "", prompts want an error.
const INTERPOLATION_MISSES: &[(&str, &str, &str, &str)] = &[
    (
        "Basic Context Miss Interpolation",
        "{}",
        "I ({{cannot}}) be seen!",
        "missing variable cannot",
    ),
    (
        "Triple Mustache Context Miss Interpolation",
        "{}",
        "I ({{{cannot}}}) be seen!",
        "missing variable cannot",
    ),
    (
        "Ampersand Context Miss Interpolation",
        "{}",
        "I ({{&cannot}}) be seen!",
        "missing variable cannot",
    ),
    (
        "Dotted Names - Broken Chains",
        r#"{"a":{}}"#,
        "\"{{a.b.c}}\" == \"\"",
        "missing variable a.b.c",
    ),
    (
        "Dotted Names - Broken Chain Resolution",
        r#"{"a":{"b":{}},"c":{"name":"Jim"}}"#,
        "\"{{a.b.c.name}}\" == \"\"",
        "missing variable a.b.c.name",
    ),
    (
        "Dotted Names - Context Precedence",
        r#"{"a":{"b":{}},"b":{"c":"ERROR"}}"#,
        "{{#a}}{{b.c}}{{/a}}",
        "missing variable b.c",
    ),
    (
        "Dotted Names are never single keys",
        r#"{"a.b":"c"}"#,
        "{{a.b}}",
        "missing variable a.b",
    ),
];

const SECTIONS: &[Case] = &[
    ("Truthy", r#"{"boolean":true}"#, "\"{{#boolean}}This should be rendered.{{/boolean}}\"", "\"This should be rendered.\""),
    ("Falsey", r#"{"boolean":false}"#, "\"{{#boolean}}This should not be rendered.{{/boolean}}\"", "\"\""),
    ("Null is falsey", r#"{"null":null}"#, "\"{{#null}}This should not be rendered.{{/null}}\"", "\"\""),
    ("Context", r#"{"context":{"name":"Joe"}}"#, "\"{{#context}}Hi {{name}}.{{/context}}\"", "\"Hi Joe.\""),
    ("Parent contexts", r#"{"a":"foo","b":"wrong","sec":{"b":"bar"},"c":{"d":"baz"}}"#, "\"{{#sec}}{{a}}, {{b}}, {{c.d}}{{/sec}}\"", "\"foo, bar, baz\""),
    ("Variable test", r#"{"foo":"bar"}"#, "\"{{#foo}}{{.}} is {{foo}}{{/foo}}\"", "\"bar is bar\""),
    ("List Contexts", r#"{"tops":[{"tname":{"upper":"A","lower":"a"},"middles":[{"mname":"1","bottoms":[{"bname":"x"},{"bname":"y"}]}]}]}"#,
        "{{#tops}}{{#middles}}{{tname.lower}}{{mname}}.{{#bottoms}}{{tname.upper}}{{mname}}{{bname}}.{{/bottoms}}{{/middles}}{{/tops}}", "a1.A1x.A1y."),
    ("Deeply Nested Contexts", r#"{"a":{"one":1},"b":{"two":2},"c":{"three":3,"d":{"four":4,"five":5}}}"#,
        "{{#a}}\n{{one}}\n{{#b}}\n{{one}}{{two}}{{one}}\n{{#c}}\n{{one}}{{two}}{{three}}{{two}}{{one}}\n{{#d}}\n{{one}}{{two}}{{three}}{{four}}{{three}}{{two}}{{one}}\n{{#five}}\n{{one}}{{two}}{{three}}{{four}}{{five}}{{four}}{{three}}{{two}}{{one}}\n{{one}}{{two}}{{three}}{{four}}{{.}}6{{.}}{{four}}{{three}}{{two}}{{one}}\n{{one}}{{two}}{{three}}{{four}}{{five}}{{four}}{{three}}{{two}}{{one}}\n{{/five}}\n{{one}}{{two}}{{three}}{{four}}{{three}}{{two}}{{one}}\n{{/d}}\n{{one}}{{two}}{{three}}{{two}}{{one}}\n{{/c}}\n{{one}}{{two}}{{one}}\n{{/b}}\n{{one}}\n{{/a}}\n",
        "1\n121\n12321\n1234321\n123454321\n12345654321\n123454321\n1234321\n12321\n121\n1\n"),
    ("List", r#"{"list":[{"item":1},{"item":2},{"item":3}]}"#, "\"{{#list}}{{item}}{{/list}}\"", "\"123\""),
    ("Empty List", r#"{"list":[]}"#, "\"{{#list}}Yay lists!{{/list}}\"", "\"\""),
    ("Doubled", r#"{"bool":true,"two":"second"}"#, "{{#bool}}\n* first\n{{/bool}}\n* {{two}}\n{{#bool}}\n* third\n{{/bool}}\n", "* first\n* second\n* third\n"),
    ("Nested (Truthy)", r#"{"bool":true}"#, "| A {{#bool}}B {{#bool}}C{{/bool}} D{{/bool}} E |", "| A B C D E |"),
    ("Nested (Falsey)", r#"{"bool":false}"#, "| A {{#bool}}B {{#bool}}C{{/bool}} D{{/bool}} E |", "| A  E |"),
    ("Context Misses", "{}", "[{{#missing}}Found key 'missing'!{{/missing}}]", "[]"),
    ("Implicit Iterator - String", r#"{"list":["a","b","c","d","e"]}"#, "\"{{#list}}({{.}}){{/list}}\"", "\"(a)(b)(c)(d)(e)\""),
    ("Implicit Iterator - Integer", r#"{"list":[1,2,3,4,5]}"#, "\"{{#list}}({{.}}){{/list}}\"", "\"(1)(2)(3)(4)(5)\""),
    ("Implicit Iterator - Decimal", r#"{"list":[1.1,2.2,3.3,4.4,5.5]}"#, "\"{{#list}}({{.}}){{/list}}\"", "\"(1.1)(2.2)(3.3)(4.4)(5.5)\""),
    ("Implicit Iterator - Array", r#"{"list":[[1,2,3],["a","b","c"]]}"#, "\"{{#list}}({{#.}}{{.}}{{/.}}){{/list}}\"", "\"(123)(abc)\""),
    // Adapted: not escaped.
    ("Implicit Iterator - HTML Escaping", r#"{"list":["&","\"","<",">"]}"#, "\"{{#list}}({{.}}){{/list}}\"", "\"(&)(\")(<)(>)\""),
    ("Implicit Iterator - Triple mustache", r#"{"list":["&","\"","<",">"]}"#, "\"{{#list}}({{{.}}}){{/list}}\"", "\"(&)(\")(<)(>)\""),
    ("Implicit Iterator - Ampersand", r#"{"list":["&","\"","<",">"]}"#, "\"{{#list}}({{&.}}){{/list}}\"", "\"(&)(\")(<)(>)\""),
    ("Implicit Iterator - Root-level", r#"[{"value":"a"},{"value":"b"}]"#, "\"{{#.}}({{value}}){{/.}}\"", "\"(a)(b)\""),
    ("Dotted Names - Truthy", r#"{"a":{"b":{"c":true}}}"#, "\"{{#a.b.c}}Here{{/a.b.c}}\" == \"Here\"", "\"Here\" == \"Here\""),
    ("Dotted Names - Falsey", r#"{"a":{"b":{"c":false}}}"#, "\"{{#a.b.c}}Here{{/a.b.c}}\" == \"\"", "\"\" == \"\""),
    ("Dotted Names - Broken Chains", r#"{"a":{}}"#, "\"{{#a.b.c}}Here{{/a.b.c}}\" == \"\"", "\"\" == \"\""),
    ("Surrounding Whitespace", r#"{"boolean":true}"#, " | {{#boolean}}\t|\t{{/boolean}} | \n", " | \t|\t | \n"),
    ("Internal Whitespace", r#"{"boolean":true}"#, " | {{#boolean}} {{! Important Whitespace }}\n {{/boolean}} | \n", " |  \n  | \n"),
    ("Indented Inline Sections", r#"{"boolean":true}"#, " {{#boolean}}YES{{/boolean}}\n {{#boolean}}GOOD{{/boolean}}\n", " YES\n GOOD\n"),
    ("Standalone Lines", r#"{"boolean":true}"#, "| This Is\n{{#boolean}}\n|\n{{/boolean}}\n| A Line\n", "| This Is\n|\n| A Line\n"),
    ("Indented Standalone Lines", r#"{"boolean":true}"#, "| This Is\n  {{#boolean}}\n|\n  {{/boolean}}\n| A Line\n", "| This Is\n|\n| A Line\n"),
    ("Standalone Line Endings", r#"{"boolean":true}"#, "|\r\n{{#boolean}}\r\n{{/boolean}}\r\n|", "|\r\n|"),
    ("Standalone Without Previous Line", r#"{"boolean":true}"#, "  {{#boolean}}\n#{{/boolean}}\n/", "#\n/"),
    ("Standalone Without Newline", r#"{"boolean":true}"#, "#{{#boolean}}\n/\n  {{/boolean}}", "#\n/\n"),
    ("Padding", r#"{"boolean":true}"#, "|{{# boolean }}={{/ boolean }}|", "|=|"),
];

const INVERTED: &[Case] = &[
    (
        "Falsey",
        r#"{"boolean":false}"#,
        "\"{{^boolean}}This should be rendered.{{/boolean}}\"",
        "\"This should be rendered.\"",
    ),
    (
        "Truthy",
        r#"{"boolean":true}"#,
        "\"{{^boolean}}This should not be rendered.{{/boolean}}\"",
        "\"\"",
    ),
    (
        "Null is falsey",
        r#"{"null":null}"#,
        "\"{{^null}}This should be rendered.{{/null}}\"",
        "\"This should be rendered.\"",
    ),
    (
        "Context",
        r#"{"context":{"name":"Joe"}}"#,
        "\"{{^context}}Hi {{name}}.{{/context}}\"",
        "\"\"",
    ),
    (
        "List",
        r#"{"list":[{"n":1},{"n":2},{"n":3}]}"#,
        "\"{{^list}}{{n}}{{/list}}\"",
        "\"\"",
    ),
    (
        "Empty List",
        r#"{"list":[]}"#,
        "\"{{^list}}Yay lists!{{/list}}\"",
        "\"Yay lists!\"",
    ),
    (
        "Doubled",
        r#"{"bool":false,"two":"second"}"#,
        "{{^bool}}\n* first\n{{/bool}}\n* {{two}}\n{{^bool}}\n* third\n{{/bool}}\n",
        "* first\n* second\n* third\n",
    ),
    (
        "Nested (Falsey)",
        r#"{"bool":false}"#,
        "| A {{^bool}}B {{^bool}}C{{/bool}} D{{/bool}} E |",
        "| A B C D E |",
    ),
    (
        "Nested (Truthy)",
        r#"{"bool":true}"#,
        "| A {{^bool}}B {{^bool}}C{{/bool}} D{{/bool}} E |",
        "| A  E |",
    ),
    (
        "Context Misses",
        "{}",
        "[{{^missing}}Cannot find key 'missing'!{{/missing}}]",
        "[Cannot find key 'missing'!]",
    ),
    (
        "Dotted Names - Truthy",
        r#"{"a":{"b":{"c":true}}}"#,
        "\"{{^a.b.c}}Not Here{{/a.b.c}}\" == \"\"",
        "\"\" == \"\"",
    ),
    (
        "Dotted Names - Falsey",
        r#"{"a":{"b":{"c":false}}}"#,
        "\"{{^a.b.c}}Not Here{{/a.b.c}}\" == \"Not Here\"",
        "\"Not Here\" == \"Not Here\"",
    ),
    (
        "Dotted Names - Broken Chains",
        r#"{"a":{}}"#,
        "\"{{^a.b.c}}Not Here{{/a.b.c}}\" == \"Not Here\"",
        "\"Not Here\" == \"Not Here\"",
    ),
    (
        "Surrounding Whitespace",
        r#"{"boolean":false}"#,
        " | {{^boolean}}\t|\t{{/boolean}} | \n",
        " | \t|\t | \n",
    ),
    (
        "Internal Whitespace",
        r#"{"boolean":false}"#,
        " | {{^boolean}} {{! Important Whitespace }}\n {{/boolean}} | \n",
        " |  \n  | \n",
    ),
    (
        "Indented Inline Sections",
        r#"{"boolean":false}"#,
        " {{^boolean}}NO{{/boolean}}\n {{^boolean}}WAY{{/boolean}}\n",
        " NO\n WAY\n",
    ),
    (
        "Standalone Lines",
        r#"{"boolean":false}"#,
        "| This Is\n{{^boolean}}\n|\n{{/boolean}}\n| A Line\n",
        "| This Is\n|\n| A Line\n",
    ),
    (
        "Standalone Indented Lines",
        r#"{"boolean":false}"#,
        "| This Is\n  {{^boolean}}\n|\n  {{/boolean}}\n| A Line\n",
        "| This Is\n|\n| A Line\n",
    ),
    (
        "Standalone Line Endings",
        r#"{"boolean":false}"#,
        "|\r\n{{^boolean}}\r\n{{/boolean}}\r\n|",
        "|\r\n|",
    ),
    (
        "Standalone Without Previous Line",
        r#"{"boolean":false}"#,
        "  {{^boolean}}\n^{{/boolean}}\n/",
        "^\n/",
    ),
    (
        "Standalone Without Newline",
        r#"{"boolean":false}"#,
        "^{{^boolean}}\n/\n  {{/boolean}}",
        "^\n/\n",
    ),
    (
        "Padding",
        r#"{"boolean":false}"#,
        "|{{^ boolean }}={{/ boolean }}|",
        "|=|",
    ),
];

const COMMENTS: &[Case] = &[
    (
        "Inline",
        "{}",
        "12345{{! Comment Block! }}67890",
        "1234567890",
    ),
    (
        "Multiline",
        "{}",
        "12345{{!\n  This is a\n  multi-line comment...\n}}67890\n",
        "1234567890\n",
    ),
    (
        "Standalone",
        "{}",
        "Begin.\n{{! Comment Block! }}\nEnd.\n",
        "Begin.\nEnd.\n",
    ),
    (
        "Indented Standalone",
        "{}",
        "Begin.\n  {{! Indented Comment Block! }}\nEnd.\n",
        "Begin.\nEnd.\n",
    ),
    (
        "Standalone Line Endings",
        "{}",
        "|\r\n{{! Standalone Comment }}\r\n|",
        "|\r\n|",
    ),
    (
        "Standalone Without Previous Line",
        "{}",
        "  {{! I'm Still Standalone }}\n!",
        "!",
    ),
    (
        "Standalone Without Newline",
        "{}",
        "!\n  {{! I'm Still Standalone }}",
        "!\n",
    ),
    (
        "Multiline Standalone",
        "{}",
        "Begin.\n{{!\nSomething's going on here...\n}}\nEnd.\n",
        "Begin.\nEnd.\n",
    ),
    (
        "Indented Multiline Standalone",
        "{}",
        "Begin.\n  {{!\n    Something's going on here...\n  }}\nEnd.\n",
        "Begin.\nEnd.\n",
    ),
    ("Indented Inline", "{}", "  12 {{! 34 }}\n", "  12 \n"),
    (
        "Surrounding Whitespace",
        "{}",
        "12345 {{! Comment Block! }} 67890",
        "12345  67890",
    ),
    (
        "Variable Name Collision",
        r#"{"! comment":1,"! comment ":2,"!comment":3,"comment":4}"#,
        "comments never show: >{{! comment }}<",
        "comments never show: ><",
    ),
];

const DELIMITERS: &[Case] = &[
    ("Pair Behavior", r#"{"text":"Hey!"}"#, "{{=<% %>=}}(<%text%>)", "(Hey!)"),
    ("Special Characters", r#"{"text":"It worked!"}"#, "({{=[ ]=}}[text])", "(It worked!)"),
    ("Sections", r#"{"section":true,"data":"I got interpolated."}"#,
        "[\n{{#section}}\n  {{data}}\n  |data|\n{{/section}}\n\n{{= | | =}}\n|#section|\n  {{data}}\n  |data|\n|/section|\n]\n",
        "[\n  I got interpolated.\n  |data|\n\n  {{data}}\n  I got interpolated.\n]\n"),
    ("Inverted Sections", r#"{"section":false,"data":"I got interpolated."}"#,
        "[\n{{^section}}\n  {{data}}\n  |data|\n{{/section}}\n\n{{= | | =}}\n|^section|\n  {{data}}\n  |data|\n|/section|\n]\n",
        "[\n  I got interpolated.\n  |data|\n\n  {{data}}\n  I got interpolated.\n]\n"),
    ("Surrounding Whitespace", "{}", "| {{=@ @=}} |", "|  |"),
    ("Outlying Whitespace (Inline)", "{}", " | {{=@ @=}}\n", " | \n"),
    ("Standalone Tag", "{}", "Begin.\n{{=@ @=}}\nEnd.\n", "Begin.\nEnd.\n"),
    ("Indented Standalone Tag", "{}", "Begin.\n  {{=@ @=}}\nEnd.\n", "Begin.\nEnd.\n"),
    ("Standalone Line Endings", "{}", "|\r\n{{= @ @ =}}\r\n|", "|\r\n|"),
    ("Standalone Without Previous Line", "{}", "  {{=@ @=}}\n=", "="),
    ("Standalone Without Newline", "{}", "=\n  {{=@ @=}}", "=\n"),
    ("Pair with Padding", "{}", "|{{= @   @ =}}|", "||"),
];

/// The partials spec, and the delimiters cases that use partials.
const PARTIALS: &[PartialCase] = &[
    (
        "Basic Behavior",
        "{}",
        "\"{{>text}}\"",
        &[("text", "from partial")],
        "\"from partial\"",
    ),
    (
        "Context",
        r#"{"text":"content"}"#,
        "\"{{>partial}}\"",
        &[("partial", "*{{text}}*")],
        "\"*content*\"",
    ),
    (
        "Recursion",
        r#"{"content":"X","nodes":[{"content":"Y","nodes":[]}]}"#,
        "{{>node}}",
        &[("node", "{{content}}<{{#nodes}}{{>node}}{{/nodes}}>")],
        "X<Y<>>",
    ),
    (
        "Nested",
        r#"{"a":"hello","b":"world"}"#,
        "{{>outer}}",
        &[("outer", "*{{a}} {{>inner}}*"), ("inner", "{{b}}!")],
        "*hello world!*",
    ),
    (
        "Surrounding Whitespace",
        "{}",
        "| {{>partial}} |",
        &[("partial", "\t|\t")],
        "| \t|\t |",
    ),
    (
        "Inline Indentation",
        r#"{"data":"|"}"#,
        "  {{data}}  {{> partial}}\n",
        &[("partial", ">\n>")],
        "  |  >\n>\n",
    ),
    (
        "Standalone Line Endings",
        "{}",
        "|\r\n{{>partial}}\r\n|",
        &[("partial", ">")],
        "|\r\n>|",
    ),
    (
        "Standalone Without Previous Line",
        "{}",
        "  {{>partial}}\n>",
        &[("partial", ">\n>")],
        "  >\n  >>",
    ),
    (
        "Standalone Without Newline",
        "{}",
        ">\n  {{>partial}}",
        &[("partial", ">\n>")],
        ">\n  >\n  >",
    ),
    (
        "Standalone Indentation",
        r#"{"content":"<\n->"}"#,
        "\\\n {{>partial}}\n/\n",
        &[("partial", "|\n{{{content}}}\n|\n")],
        "\\\n |\n <\n->\n |\n/\n",
    ),
    (
        "Padding Whitespace",
        r#"{"boolean":true}"#,
        "|{{> partial }}|",
        &[("partial", "[]")],
        "|[]|",
    ),
    (
        "delimiters: Partial Inheritence",
        r#"{"value":"yes"}"#,
        "[ {{>include}} ]\n{{= | | =}}\n[ |>include| ]\n",
        &[("include", ".{{value}}.")],
        "[ .yes. ]\n[ .yes. ]\n",
    ),
    (
        "delimiters: Post-Partial Behavior",
        r#"{"value":"yes"}"#,
        "[ {{>include}} ]\n[ .{{value}}.  .|value|. ]\n",
        &[("include", ".{{value}}. {{= | | =}} .|value|.")],
        "[ .yes.  .yes. ]\n[ .yes.  .|value|. ]\n",
    ),
];

#[test]
fn spec_interpolation() {
    check(INTERPOLATION);
}

#[test]
fn spec_interpolation_misses_are_errors() {
    for (name, data, template, expected) in INTERPOLATION_MISSES {
        assert_eq!(errors(data, template, &[]), vec![*expected], "{name}");
    }
}

#[test]
fn spec_sections() {
    check(SECTIONS);
}

#[test]
fn spec_inverted() {
    check(INVERTED);
}

#[test]
fn spec_comments() {
    check(COMMENTS);
}

#[test]
fn spec_delimiters() {
    check(DELIMITERS);
}

#[test]
fn spec_partials() {
    for (name, data, template, partials, expected) in PARTIALS {
        assert_eq!(
            run(data, template, partials).as_deref(),
            Ok(*expected),
            "{name}"
        );
    }
}

#[test]
fn spec_partials_failed_lookup_is_an_error() {
    assert_eq!(errors("{}", "\"{{>text}}\"", &[]), ["missing partial text"]);
}

#[test]
fn nested_sections_over_lists_of_objects() {
    let vars = json!({
        "system": "You are terse.",
        "examples": [
            {"q": "2+2?", "a": "4", "tags": ["math"]},
            {"q": "Capital of France?", "a": "Paris", "tags": []},
        ],
    });
    let template = "{{system}}\n{{#examples}}\nQ: {{q}}\n{{#tags}}\n[{{.}}]\n{{/tags}}\n{{^tags}}\n[untagged]\n{{/tags}}\nA: {{a}}\n{{/examples}}\n";
    let expected =
        "You are terse.\nQ: 2+2?\n[math]\nA: 4\nQ: Capital of France?\n[untagged]\nA: Paris\n";
    assert_eq!(
        render(template, &vars, &resolver(&[])).as_deref(),
        Ok(expected)
    );
}

#[test]
fn every_missing_variable_and_partial_is_named_once() {
    let vars = json!({"items": [{"title": "a"}, {}, {}]});
    let template = "Hi {{name}}! {{>footer}} {{>signature@3}}\n{{#items}}{{title}} {{subtitle}}\n{{/items}}{{name}}";
    let err = render(template, &vars, &resolver(&[])).unwrap_err();
    assert_eq!(
        err.0,
        [
            "missing variable name",
            "missing partial footer",
            "missing partial signature@3",
            "missing variable subtitle",
            "missing variable title",
        ]
    );
    assert!(err
        .to_string()
        .starts_with("missing variable name; missing partial footer; "));
}

#[test]
fn absent_sections_are_false_not_errors() {
    assert_eq!(
        run(
            "{}",
            "[{{#draft}}{{body}}{{/draft}}{{^draft}}final{{/draft}}]",
            &[]
        )
        .as_deref(),
        Ok("[final]")
    );
}

#[test]
fn an_empty_string_skips_a_section() {
    let template = "{{#context}}Context: {{context}}\n{{/context}}Go.";
    assert_eq!(
        run(r#"{"context":""}"#, template, &[]).as_deref(),
        Ok("Go.")
    );
    assert_eq!(
        run(r#"{"context":"x"}"#, template, &[]).as_deref(),
        Ok("Context: x\nGo.")
    );
}

#[test]
fn pinned_versions_reach_the_resolver() {
    let calls = RefCell::new(Vec::new());
    let partials = |name: &str, version: Option<u32>| {
        calls.borrow_mut().push((name.to_string(), version));
        Some(format!(
            "<{name}{}>",
            version.map_or(String::new(), |v| format!(" v{v}"))
        ))
    };
    let out = render(
        "{{>persona@5}} {{>persona}} {{> persona@12 }}",
        &json!({}),
        &partials,
    );
    assert_eq!(out.as_deref(), Ok("<persona v5> <persona> <persona v12>"));
    assert_eq!(
        *calls.borrow(),
        [
            ("persona".to_string(), Some(5)),
            ("persona".to_string(), None),
            ("persona".to_string(), Some(12))
        ]
    );
}

#[test]
fn a_partial_in_a_list_is_resolved_once() {
    let calls = RefCell::new(0);
    let partials = |_: &str, _: Option<u32>| {
        *calls.borrow_mut() += 1;
        Some("({{.}})".to_string())
    };
    let out = render(
        "{{#xs}}{{>item}}{{/xs}}",
        &json!({"xs": [1, 2, 3]}),
        &partials,
    );
    assert_eq!(out.as_deref(), Ok("(1)(2)(3)"));
    assert_eq!(*calls.borrow(), 1);
}

#[test]
fn values_render_verbatim() {
    let vars = json!({
        "text": "say \"hi\" \\ back\nnew line\ttab — ünïcødé 🦀 </s> &amp;",
        "yes": true,
        "no": false,
        "nothing": null,
        "big": 12345678901234_i64,
        "list": [1, "two", {"three": 3}],
        "object": {"k": "v \"q\""},
    });
    let out = render(
        "{{text}}|{{yes}}|{{no}}|{{nothing}}|{{big}}|{{list}}|{{object}}",
        &vars,
        &resolver(&[]),
    );
    assert_eq!(
        out.as_deref(),
        Ok("say \"hi\" \\ back\nnew line\ttab — ünïcødé 🦀 </s> &amp;|true|false||12345678901234|[1,\"two\",{\"three\":3}]|{\"k\":\"v \\\"q\\\"\"}")
    );
}

#[test]
fn dotted_names_descend_from_the_first_match_up_the_stack() {
    let vars =
        json!({"user": {"name": "Ada", "org": {"name": "Analytical"}}, "turns": [{"text": "hi"}]});
    let template = "{{user.name}} of {{user.org.name}}: {{#turns}}{{user.org.name}} says {{text}}{{/turns}}{{#user.org}} ({{name}}){{/user.org}}";
    assert_eq!(
        render(template, &vars, &resolver(&[])).as_deref(),
        Ok("Ada of Analytical: Analytical says hi (Analytical)")
    );
}

#[test]
fn recursive_partials_stop_at_the_depth_limit() {
    for partial in ["{{>loop}}", "{{>loop}}{{>loop}}"] {
        let err = run("{}", "{{>loop}}", &[("loop", partial)]).unwrap_err();
        assert_eq!(
            err.0,
            [format!(
                "partial loop nested more than {MAX_PARTIAL_DEPTH} deep (does it include itself?)"
            )]
        );
    }
}

#[test]
fn parse_errors_name_line_and_tag() {
    let cases: &[(&str, &[&str])] = &[
        ("a\n{{#open}}\nb", &["line 2: {{#open}} is never closed"]),
        (
            "{{#a}}\n{{#b}}\n{{/a}}",
            &["line 2: {{#b}} is not closed before {{/a}} on line 3"],
        ),
        (
            "x\n\n{{/stray}}",
            &["line 3: {{/stray}} closes no open section"],
        ),
        ("{{=<% =}}", &["line 1: bad delimiters in {{=<% =}}"]),
        ("ok\n{{name", &["line 2: unclosed tag {{name"]),
        (
            "{{ }} {{first name}} {{>p@x}}",
            &[
                "line 1: empty tag name in {{ }}",
                "line 1: whitespace in tag name in {{first name}}",
                "line 1: bad partial version in {{>p@x}}",
            ],
        ),
    ];
    for (template, expected) in cases {
        assert_eq!(errors("{}", template, &[]), *expected, "{template:?}");
        assert_eq!(
            variables(template).unwrap_err().0,
            *expected,
            "{template:?}"
        );
    }
}

#[test]
fn parse_errors_in_partials_name_the_partial() {
    let err = run("{}", "{{>card@2}}", &[("card@2", "\n{{#x}}")]).unwrap_err();
    assert_eq!(err.0, ["partial card@2: line 2: {{#x}} is never closed"]);
}

#[test]
fn variables_lists_the_names_looked_up_at_the_top() {
    let template = "{{greeting}} {{#user}}{{name}}{{/user}} {{^admin}}{{guest}}{{/admin}} {{a.b}} {{.}} {{>p}} {{! c }}{{greeting}}";
    assert_eq!(
        variables(template).unwrap(),
        ["greeting", "user", "admin", "guest", "a"]
    );
}

#[test]
fn unicode_names_delimiters_and_text() {
    let template = "ü{{#ä}}ö{{/ä}}\n  {{! ü }}\n{{=« »=}}«名前»ß";
    assert_eq!(
        run(r#"{"ä":true,"名前":"名"}"#, template, &[]).as_deref(),
        Ok("üö\n名ß")
    );
}
