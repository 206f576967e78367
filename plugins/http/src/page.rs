//! What a response says about itself: its title, and technology hints in
//! its headers (as httpx and whatweb read them, headers only).

use wscan_sdk::http::Response;

/// The text of the first `<title>`, whitespace collapsed and the common
/// entities decoded; `None` when there is none or it is empty.
pub fn title(body: &str) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let text = body[start..end]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    (!text.is_empty()).then_some(text)
}

/// Technologies the headers name: the server software and version, the
/// framework, and what session cookies give away.
pub fn technologies(response: &Response) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut add = |t: String| {
        if !t.is_empty() && !found.contains(&t) {
            found.push(t);
        }
    };
    for (name, value) in &response.headers {
        match name.as_str() {
            // "nginx/1.25.3 (Ubuntu)" is nginx 1.25.3.
            "server" | "x-powered-by" => {
                for product in value.split([' ', ',']).filter(|p| !p.starts_with('(')) {
                    add(product.replacen('/', " ", 1));
                }
            }
            "x-aspnet-version" | "x-aspnetmvc-version" => add("ASP.NET".into()),
            "x-generator" => add(value.clone()),
            "x-drupal-cache" | "x-drupal-dynamic-cache" => add("Drupal".into()),
            "x-jenkins" => add(format!("Jenkins {value}")),
            "set-cookie" => {
                let cookie = value.split('=').next().unwrap_or("").trim();
                let hint = match cookie {
                    "PHPSESSID" => "PHP",
                    "JSESSIONID" => "Java",
                    "ASP.NET_SessionId" => "ASP.NET",
                    "laravel_session" => "Laravel",
                    "django_language" | "csrftoken" => "Django",
                    "_rails_session" => "Ruby on Rails",
                    "connect.sid" => "Express",
                    _ => continue,
                };
                add(hint.into());
            }
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        assert_eq!(
            title("<html><HEAD><Title lang=en>\n  Hello &amp;\n world </TITLE>"),
            Some("Hello & world".to_string())
        );
        assert_eq!(title("<title></title>"), None);
        assert_eq!(title("no title here"), None);
    }
}
