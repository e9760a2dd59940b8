//! The state file's format (`server.state_file`): one line per client that learned to require
//! Message-Authenticator (RFC 3579 §3.2, `require_message_authenticator = "auto"`), keyed by the
//! client's configured address. Comments start with `#`. The shell reads and writes the file.

const STATE_KEY: &str = "message_authenticator_required";

/// The client addresses listed in a state file's text.
pub(crate) fn parse(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix(STATE_KEY))
        .map(|a| a.trim().to_string())
        .collect()
}

/// The text of a state file listing these client addresses.
pub(crate) fn render(learned: &[String]) -> String {
    let mut text = String::from(
        "# certradius learned state: clients that sent a valid Message-Authenticator and must\n\
         # from now on (require_message_authenticator = \"auto\"). Delete a line to forget one.\n",
    );
    for a in learned {
        text.push_str(STATE_KEY);
        text.push(' ');
        text.push_str(a);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let learned = vec!["10.0.0.0/8".to_string(), "::1".to_string()];
        let text = render(&learned);
        assert!(text.starts_with('#'));
        assert_eq!(parse(&text), learned);
    }
}
