import ArgumentParser
import ChorusNode

struct Chorus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus",
        abstract: "A leaderless replicated store for bare Linux hosts.",
        subcommands: [
            AgentCommand.self, MembersCommand.self, GetCommand.self, PutCommand.self, DeleteCommand.self,
            RingCommand.self, HintsCommand.self, RepairCommand.self, StatusCommand.self, LeaveCommand.self,
            RemoveCommand.self,
            KeygenCommand.self,
            KeysCommand.self, SimCommand.self,
        ])
}
