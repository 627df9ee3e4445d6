import ArgumentParser
import ChorusNode

Chorus.main()
