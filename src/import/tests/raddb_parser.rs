//! Grammar tests of the FreeRADIUS configuration reader.

use std::path::Path;
use std::time::Instant;

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

fn text(src: &str) -> Section {
    parse_text(Path::new("/raddb/radiusd.conf"), src).unwrap()
}

#[test]
fn sections_pairs_words_and_lines() {
    let root = text(
        "prefix = /usr\n\
         # a comment\n\
         client localhost {\n\
         \tipaddr = 127.0.0.1   # trailing comment\n\
         \tsecret = \"a#b\\\"c\\\\d\\101\"\n\
         \tlimit {\n\t\tmax_connections = 16\n\t}\n\
         }\n\
         authorize {\n\t-sql\n\teap { ok = return }\n\tif (&User-Name == \"{x}\") {\n\t\treject\n\t}\n}\n",
    );
    let c = root.section("client").unwrap();
    assert_eq!(c.arg.as_deref(), Some("localhost"));
    assert_eq!(c.loc.line, 3);
    let ip = c.pair("ipaddr").unwrap();
    assert_eq!(ip.value, "127.0.0.1");
    assert_eq!(ip.loc.to_string(), "/raddb/radiusd.conf:4");
    assert_eq!(c.pair("secret").unwrap().value, "a#b\"c\\dA");
    assert_eq!(
        c.section("limit")
            .unwrap()
            .pair("max_connections")
            .unwrap()
            .value,
        "16"
    );
    let a = root.section("authorize").unwrap();
    let Item::Word(w) = &a.items[0] else {
        panic!("{:?}", a.items[0])
    };
    assert_eq!((w.name.as_str(), w.optional), ("sql", true));
    let eap = a.section("eap").unwrap();
    assert_eq!(eap.pair("ok").unwrap().value, "return");
    let cond = a.section("if").unwrap();
    assert_eq!(cond.arg.as_deref(), Some("(&User-Name == \"{x}\")"));
    assert_eq!(cond.loc.line, 13);
}

#[test]
fn single_quotes_keep_backslashes_and_do_not_expand() {
    let root = text("a = x\nb = 'it\\'s ${a} \\n'\nc = \"${a}\\t\"\n");
    assert_eq!(root.pair("b").unwrap().value, "it's ${a} \\n");
    assert_eq!(root.pair("b").unwrap().quote, Quote::Single);
    assert_eq!(root.pair("c").unwrap().value, "x\t");
}

#[test]
fn variables_referring_to_variables_and_sections() {
    let root = text(
        "prefix = /usr\nlocalstatedir = ${prefix}/var\nrun_dir = ${localstatedir}/run\n\
         security {\n\tmax = 4\n}\n\
         modules {\n\tfiles authorized_macs {\n\t\tmoddir = ${run_dir}/${.:instance}\n\t\tn = ${security.max}\n\t\tm = ${.moddir}/x\n\t}\n}\n",
    );
    assert_eq!(root.pair("run_dir").unwrap().value, "/usr/var/run");
    let f = root.section("modules").unwrap().section("files").unwrap();
    assert_eq!(
        f.pair("moddir").unwrap().value,
        "/usr/var/run/authorized_macs"
    );
    assert_eq!(f.pair("n").unwrap().value, "4");
    assert_eq!(f.pair("m").unwrap().value, "/usr/var/run/authorized_macs/x");
}

#[test]
fn an_undefined_variable_names_file_and_line() {
    let err = parse_text(Path::new("/r/radiusd.conf"), "a = 1\nb = ${nope}/x\n").unwrap_err();
    assert_eq!(err.loc.line, 2);
    assert!(err.to_string().starts_with("/r/radiusd.conf:2:"), "{err}");
    assert!(err.to_string().contains("${nope}"), "{err}");
}

#[test]
fn syntax_errors_name_file_and_line() {
    for (src, line) in [
        ("a {\n b = 1\n", 1),
        ("a = 1\n}\n", 2),
        ("a = \"open\n", 1),
        ("x = 1\ny = 2 3\n", 2),
        ("if (a == b {\n", 1),
    ] {
        let err = parse_text(Path::new("/r/f.conf"), src).unwrap_err();
        assert_eq!(err.loc.line, line, "{src:?}: {err}");
    }
}

#[test]
fn nested_directory_and_optional_includes_relative_to_the_including_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let top = write(
        d,
        "radiusd.conf",
        "confdir = /etc/raddb\n$INCLUDE clients.conf\nmodules {\n$INCLUDE mods-enabled/\n}\n$-INCLUDE missing.conf\n",
    );
    write(
        d,
        "clients.conf",
        "$INCLUDE sub/more.conf\nclient a {\n secret = s\n}\n",
    );
    write(d, "sub/more.conf", "$INCLUDE deeper.conf\n");
    write(
        d,
        "sub/deeper.conf",
        "client deep {\n secret = ${confdir}\n}\n",
    );
    write(
        d,
        "mods-available/eap",
        "eap {\n default_eap_type = tls\n}\n",
    );
    write(d, "mods-available/b", "b {\n}\n");
    std::fs::create_dir(d.join("mods-enabled")).unwrap();
    std::os::unix::fs::symlink("../mods-available/eap", d.join("mods-enabled/eap")).unwrap();
    std::os::unix::fs::symlink("../mods-available/b", d.join("mods-enabled/b")).unwrap();
    write(d, "mods-enabled/.hidden", "broken {\n");
    write(d, "mods-enabled/eap~", "broken {\n");
    let root = parse_file(&top).unwrap();
    let clients: Vec<_> = root.sections("client").collect();
    assert_eq!(clients.len(), 2);
    assert_eq!(clients[0].arg.as_deref(), Some("deep"));
    assert_eq!(clients[0].pair("secret").unwrap().value, "/etc/raddb");
    assert!(clients[0].loc.file.ends_with("sub/deeper.conf"));
    let modules = root.section("modules").unwrap();
    let names: Vec<_> = modules
        .sections("b")
        .chain(modules.sections("eap"))
        .collect();
    assert_eq!(names.len(), 2);
    let eap = modules.section("eap").unwrap();
    assert!(eap.loc.file.ends_with("mods-enabled/eap"), "{}", eap.loc);
    assert_eq!(eap.pair("default_eap_type").unwrap().loc.line, 2);
}

#[test]
fn include_loops_and_missing_includes_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let top = write(d, "radiusd.conf", "a = 1\n$INCLUDE b.conf\n");
    write(d, "b.conf", "\n\n$INCLUDE radiusd.conf\n");
    let err = parse_file(&top).unwrap_err().to_string();
    assert!(err.contains("include loop"), "{err}");
    assert!(err.contains("b.conf:3"), "{err}");
    assert!(err.contains("radiusd.conf is already being read"), "{err}");
    write(d, "b.conf", "$INCLUDE nothere.conf\n");
    let err = parse_file(&top).unwrap_err().to_string();
    assert!(
        err.contains("b.conf:1") && err.contains("nothere.conf"),
        "{err}"
    );
}

#[test]
#[allow(clippy::disallowed_methods)] // tests may read the clock
fn a_10_mb_clients_file_parses_quickly() {
    let mut src = String::with_capacity(11 << 20);
    let mut n = 0u32;
    while src.len() < 10 << 20 {
        src.push_str(&format!(
            "client nas{n} {{\n\tipaddr = 10.{}.{}.{}\n\tsecret = \"s3cr#t{n}\"\n\tshortname = nas-{n}\n\trequire_message_authenticator = yes\n}}\n",
            (n >> 16) & 255,
            (n >> 8) & 255,
            n & 255
        ));
        n += 1;
    }
    let started = Instant::now();
    let root = parse_text(Path::new("/r/clients.conf"), &src).unwrap();
    let took = started.elapsed();
    eprintln!("{} octets, {n} clients: {took:?}", src.len());
    assert_eq!(root.sections("client").count(), n as usize);
    // A debug build reads it in about 3.5 s on a busy 2-core machine (a release build in a
    // fraction of that); 30 s leaves room for a loaded CI machine and still catches a
    // quadratic turn.
    assert!(took.as_secs() < 30, "{took:?}");
}
