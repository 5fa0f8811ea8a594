//! Packet capture on the loopback interface with dumpcap, and a reader for the classic
//! pcap files it writes (`-P`), reduced to what the media tests count: UDP datagrams.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{TestDir, send_signal, wait_until};

/// A running dumpcap on `lo`, stopped by pid (SIGINT, so it flushes the file) on
/// [`Capture::stop`] or killed on drop.
pub struct Capture {
    child: Option<Child>,
    file: PathBuf,
    log: PathBuf,
}

impl Capture {
    /// Starts capturing UDP packets to or from `min..=max` on `lo`. Returns `Err` with the
    /// reason when capturing is not possible here (dumpcap missing or not permitted), so
    /// the caller can skip.
    pub fn start(dir: &TestDir, min: u16, max: u16) -> Result<Capture, String> {
        let file = dir.join("relay.pcap");
        let log = dir.join("dumpcap.log");
        let output = fs::File::create(&log).map_err(|error| error.to_string())?;
        let filter = format!("udp portrange {min}-{max}");
        let child = Command::new("dumpcap")
            .args([
                "-q",
                "-P",
                "-i",
                "lo",
                "-f",
                &filter,
                "-a",
                "duration:120",
                "-w",
            ])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(output)
            .spawn()
            .map_err(|error| format!("dumpcap could not be started: {error}"))?;
        let mut capture = Capture {
            child: Some(child),
            file,
            log,
        };

        let mut exited = false;
        let capturing = wait_until(Duration::from_secs(10), || {
            exited = capture.has_exited();
            exited || capture.log_text().contains("Capturing on")
        });
        if exited || !capturing {
            let reason = capture.log_text();
            return Err(format!("dumpcap cannot capture on lo: {}", reason.trim()));
        }
        Ok(capture)
    }

    fn has_exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().ok().flatten().is_some(),
            None => true,
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the capture and returns the UDP datagrams it recorded.
    pub fn stop(mut self) -> Vec<Datagram> {
        if let Some(mut child) = self.child.take() {
            // dumpcap writes its last buffered packets on SIGINT.
            send_signal(child.id(), "INT");
            let exited = wait_until(Duration::from_secs(10), || {
                child.try_wait().ok().flatten().is_some()
            });
            if !exited {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        read_udp(&self.file)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One captured UDP datagram.
#[derive(Debug, Clone)]
pub struct Datagram {
    pub source_port: u16,
    pub destination_port: u16,
    pub payload: Vec<u8>,
}

impl Datagram {
    /// The RTP payload type (RFC 3550 §5.1), if the payload looks like RTP version 2.
    pub fn rtp_payload_type(&self) -> Option<u8> {
        let first = *self.payload.first()?;
        let second = *self.payload.get(1)?;
        (first >> 6 == 2 && self.payload.len() >= 12).then_some(second & 0x7f)
    }
}

const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_LINUX_SLL: u32 = 113;

/// Reads the IPv4 UDP datagrams of a classic pcap file. Panics on a file it cannot read,
/// because the capture is part of the test.
pub fn read_udp(path: &Path) -> Vec<Datagram> {
    let data = fs::read(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    assert!(data.len() >= 24, "{} is not a pcap file", path.display());
    let magic = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let little_endian = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        _ => panic!("{} is not a classic pcap file", path.display()),
    };
    let read_u32 = |at: usize| {
        let bytes = [data[at], data[at + 1], data[at + 2], data[at + 3]];
        if little_endian {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        }
    };
    let link_type = read_u32(20);
    let link_header = match link_type {
        LINKTYPE_ETHERNET => 14,
        LINKTYPE_LINUX_SLL => 16,
        other => panic!("unexpected pcap link type {other}"),
    };

    let mut datagrams = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let captured = read_u32(at + 8) as usize;
        let start = at + 16;
        let end = (start + captured).min(data.len());
        if let Some(datagram) = parse_frame(&data[start..end], link_header) {
            datagrams.push(datagram);
        }
        at = start + captured;
    }
    datagrams
}

fn parse_frame(frame: &[u8], link_header: usize) -> Option<Datagram> {
    let ip = frame.get(link_header..)?;
    let version = ip.first()? >> 4;
    const UDP: u8 = 17;
    if version != 4 || *ip.get(9)? != UDP {
        return None;
    }
    let header_length = usize::from(ip[0] & 0x0f) * 4;
    let udp = ip.get(header_length..)?;
    let source_port = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    let destination_port = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    let length = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    let payload = udp.get(8..length.max(8))?.to_vec();
    Some(Datagram {
        source_port,
        destination_port,
        payload,
    })
}
