import ChorusCrypto
import Foundation
import Testing

@Suite struct KeyringTests {
    @Test func removingThePrimaryIsRefused() throws {
        let primary = try freshKey()
        var ring = try keyring(primary, freshKey())
        #expect(throws: KeyringError.cannotRemovePrimary(keyID: primary.keyID)) {
            try ring.remove(primary)
        }
        #expect(ring.primary == primary)
    }

    @Test func usingOrRemovingAnUninstalledKeyIsRefused() throws {
        var ring = try keyring(freshKey())
        let stranger = try freshKey()
        #expect(throws: KeyringError.notInstalled(keyID: stranger.keyID)) { try ring.use(stranger) }
        #expect(throws: KeyringError.notInstalled(keyID: stranger.keyID)) {
            try ring.remove(stranger)
        }
        #expect(ring.version == 0)
    }

    @Test func everyChangeBumpsTheVersionAndNoOpsDoNot() throws {
        let old = try freshKey()
        let new = try freshKey()
        var ring = try keyring(old)
        #expect(try ring.install(new))
        #expect(ring.version == 1)
        #expect(try !ring.install(new))
        #expect(try !ring.install(old))
        #expect(ring.version == 1)
        #expect(try ring.use(new))
        #expect(ring.version == 2)
        #expect(try !ring.use(new))
        #expect(ring.version == 2)
        try ring.remove(old)
        #expect(ring.version == 3)
    }

    @Test func keysListThePrimaryFirstAndLookUpByID() throws {
        let a = try freshKey()
        let b = try freshKey()
        let c = try freshKey()
        var ring = try keyring(a, b, c)
        #expect(ring.keys == [a, b, c])
        try ring.use(c)
        #expect(ring.keys.first == c)
        #expect(Set(ring.keys) == [a, b, c])
        #expect(ring.key(forID: b.keyID) == b)
        #expect(ring.key(forID: a.keyID) == a)
        let absent = try freshKey()
        #expect(ring.key(forID: absent.keyID) == nil)
    }

    @Test func duplicateKeysAreDroppedOnCreation() throws {
        let a = try freshKey()
        let b = try freshKey()
        #expect(try Keyring(primary: a, others: [a, b, b]).keys == [a, b])
    }

    @Test func higherVersionWinsAndTiesBreakTheSameWayOnEveryNode() throws {
        let a = try freshKey()
        let b = try freshKey()
        var behind = try keyring(a)
        var ahead = behind
        try ahead.install(b)
        #expect(ahead.isNewer(than: behind))
        #expect(!behind.isNewer(than: ahead))
        #expect(!ahead.isNewer(than: ahead))

        // Two operators change two nodes from the same version.
        try behind.install(try freshKey())
        #expect(behind.version == ahead.version)
        #expect(behind.isNewer(than: ahead) != ahead.isNewer(than: behind))
    }

    @Test func fileRoundTripPreservesKeysPrimaryAndVersion() throws {
        try withTemporaryDirectory { dir in
            let a = try freshKey()
            let b = try freshKey()
            var ring = try keyring(a, b)
            try ring.use(b)
            let path = dir + "/keyring.json"
            try ring.save(to: path)
            let loaded = try Keyring.load(from: path)
            #expect(loaded == ring)
            #expect(loaded.primary == b)
            #expect(loaded.version == ring.version)
            #expect(loaded.keys == ring.keys)
        }
    }

    @Test func savedFileIsPrivateJSONAndLeavesNoTemporaryFiles() throws {
        try withTemporaryDirectory { dir in
            let key = try freshKey()
            let path = dir + "/keyring.json"
            try keyring(key).save(to: path)
            var ring = try keyring(key)
            try ring.install(try freshKey())
            try ring.save(to: path)  // replaces the first file

            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["keyring.json"])
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.hasPrefix("{\"version\":1,\"primary\":\"\(key.base64)\",\"keys\":[\""))
            #expect(try Keyring.load(from: path) == ring)
        }
    }

    @Test func missingFileErrorNamesThePath() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/absent.json"
            #expect(throws: KeyringError.fileMissing(path: path)) { try Keyring.load(from: path) }
            #expect(KeyringError.fileMissing(path: path).description.contains(path))
        }
    }

    @Test(arguments: [
        "",
        "garbage",
        "{\"version\":1,\"primary\":\"AAAA\",\"keys\":[]}",
        "{\"version\":1,\"primary\":\"not base64\",\"keys\":[]}",
        "{\"version\":-1,\"primary\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"keys\":[]}",
        "{\"primary\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"keys\":[]}",
        "{\"version\":1,\"primary\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"keys\":[\"x\"]}",
    ])
    func corruptFileErrorNamesThePath(contents: String) throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/keyring.json"
            try contents.write(toFile: path, atomically: false, encoding: .utf8)
            let error = #expect(throws: KeyringError.self) { try Keyring.load(from: path) }
            guard case .corrupt(let reported, _)? = error else {
                Issue.record("expected .corrupt, got \(String(describing: error))")
                return
            }
            #expect(reported == path)
            #expect(error?.description.contains(path) == true)
        }
    }

    @Test func handWrittenFileWithoutPrimaryInKeysLoads() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/keyring.json"
            let a = try freshKey()
            let b = try freshKey()
            try "{\"version\":7,\"primary\":\"\(a.base64)\",\"keys\":[\"\(b.base64)\"]}"
                .write(toFile: path, atomically: false, encoding: .utf8)
            let ring = try Keyring.load(from: path)
            #expect(ring.primary == a)
            #expect(ring.keys == [a, b])
            #expect(ring.version == 7)
        }
    }

    @Test func savingIntoAMissingDirectoryFailsNamingThePath() throws {
        try withTemporaryDirectory { dir in
            let path = dir + "/no/such/dir/keyring.json"
            let ring = try keyring(freshKey())
            let error = #expect(throws: KeyringError.self) { try ring.save(to: path) }
            guard case .writeFailed(let reported, _)? = error else {
                Issue.record("expected .writeFailed, got \(String(describing: error))")
                return
            }
            #expect(reported == path)
        }
    }
}
