use serde_json::json;

use super::*;
use crate::guardrails::pii::{scan, Categories, Category};

fn found(text: &str) -> Vec<(Category, &str)> {
    scan(text, Categories::all())
        .into_iter()
        .map(|f| (f.category, &text[f.start..f.end]))
        .collect()
}

#[test]
fn each_category_is_found() {
    let cases = [
        (
            "mail jane.doe+x@mail.example.com.",
            Category::Email,
            "jane.doe+x@mail.example.com",
        ),
        (
            "call +1 415 555 0123 now",
            Category::Phone,
            "+1 415 555 0123",
        ),
        ("or (415) 555-0123", Category::Phone, "(415) 555-0123"),
        (
            "card 4111 1111 1111 1111",
            Category::CreditCard,
            "4111 1111 1111 1111",
        ),
        (
            "card 5500-0000-0000-0004!",
            Category::CreditCard,
            "5500-0000-0000-0004",
        ),
        (
            "iban GB82 WEST 1234 5698 7654 32 thanks",
            Category::Iban,
            "GB82 WEST 1234 5698 7654 32",
        ),
        (
            "iban DE89370400440532013000.",
            Category::Iban,
            "DE89370400440532013000",
        ),
        ("ssn 123-45-6789", Category::Ssn, "123-45-6789"),
        ("host 192.168.1.20 up", Category::IpAddress, "192.168.1.20"),
        (
            "v6 2001:db8::8a2e:370:7334 up",
            Category::IpAddress,
            "2001:db8::8a2e:370:7334",
        ),
        (
            "key sk-proj-abcdefghijklmnopqrstuvwx",
            Category::Secret,
            "sk-proj-abcdefghijklmnopqrstuvwx",
        ),
        (
            "aws AKIAIOSFODNN7EXAMPLE",
            Category::Secret,
            "AKIAIOSFODNN7EXAMPLE",
        ),
        (
            "gh ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            Category::Secret,
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        ),
        (
            "slack xoxb-123456789012-abcdefABCDEF",
            Category::Secret,
            "xoxb-123456789012-abcdefABCDEF",
        ),
    ];
    for (text, category, expected) in cases {
        assert_eq!(found(text), [(category, expected)], "in {text:?}");
    }
    let pem = "k: -----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY----- done";
    assert_eq!(found(pem), [(Category::Secret, &pem[3..pem.len() - 5])]);
}

#[test]
fn false_positives_are_avoided() {
    for text in [
        "order 4111111111111112 shipped",        // 16 digits, Luhn fails
        "iban GB82 WEST 1234 5698 7654 33",      // mod-97 fails
        "ssn 000-12-3456 or 666-12-3456",        // invalid areas
        "on 2024-01-15 at 10:30, version 1.2.3", // dates, times, versions
        "pi is 3.14159 and 1234567890 items",    // decimals; a bare 10-digit count
        "task-abcdefghijklmnopqrstuvwxyz",       // sk- inside a word
        "user@localhost and 999.1.1.1",          // no dotted domain; not an IPv4
        "ratio 12:30:45",                        // not IPv6
    ] {
        assert_eq!(found(text), [], "in {text:?}");
    }
}

#[tokio::test]
async fn redaction_covers_every_message_and_passes() {
    let h = hook(json!({"pii": {"redact": true}}));
    let mut req = chat("mail me at jane@example.com");
    req["messages"][1]["content"] = json!([
        {"type": "text", "text": "card 4111 1111 1111 1111"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
    ]);
    req["messages"][0]["content"] = json!("ip 10.0.0.1");
    let v = run_on(&h, Stage::Before, &req, None).await;
    assert!(v.result.verdict, "redacted PII passes");
    assert!(v.result.transformed && v.result.checks[0].transformed);
    let body = v.transformed.unwrap();
    assert_eq!(body["messages"][3]["content"], "mail me at [EMAIL_ADDRESS]");
    assert_eq!(
        body["messages"][1]["content"][0]["text"],
        "card [CREDIT_CARD]"
    );
    assert_eq!(
        body["messages"][1]["content"][1],
        req["messages"][1]["content"][1]
    );
    assert_eq!(body["messages"][0]["content"], "ip [IP_ADDRESS]");
    let detected = &v.result.checks[0].data.to_value()["detected"];
    assert_eq!(detected.as_array().unwrap().len(), 3, "{detected}");
    assert!(
        !v.result.checks[0]
            .data
            .to_value()
            .to_string()
            .contains("jane@"),
        "data never carries the values"
    );
}

#[tokio::test]
async fn without_redact_pii_fails_and_nothing_changes() {
    let h = hook(json!({"portkey.pii": {"categories": ["SSN"]}}));
    let v = run_on(&h, Stage::Before, &chat("ssn 123-45-6789"), None).await;
    assert!(!v.result.verdict && v.transformed.is_none());
    let only_ssn = run_on(&h, Stage::Before, &chat("mail a@example.com"), None).await;
    assert!(
        only_ssn.result.verdict,
        "categories limit what is looked for"
    );
}

#[tokio::test]
async fn output_redaction_covers_every_choice() {
    let h = hook(json!({"pii": {"redact": true, "categories": ["email_address", "PHONE_NUMBER"]}}));
    let mut resp = answer("write to bob@example.org");
    let second =
        json!({"index": 1, "message": {"role": "assistant", "content": "call +44 20 7946 0958"}});
    resp["choices"].as_array_mut().unwrap().push(second);
    let req = chat("q");
    let v = run_on(&h, Stage::After, &req, Some(&resp)).await;
    let body = v.transformed.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "write to [EMAIL_ADDRESS]"
    );
    assert_eq!(
        body["choices"][1]["message"]["content"],
        "call [PHONE_NUMBER]"
    );
}
